"""One HTML page: plotly.js, the study's data as JSON and our script, inlined, so the file works
offline and can be mailed or archived with the study; or, for pages published side by side, with
plotly.js loaded from one shared copy beside them (``write_shared_plotly``)."""

import html
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from plotly.offline import get_plotlyjs, get_plotlyjs_version

from dashboards.crops import NO_CROPS, ShownCrops
from dashboards.data import StudyData, alpha_points, metric_notes, vocabulary
from dashboards.style import page_style
from study.engine.mlflow_view import run_url
from study.results.claims import Verdict
from study.results.labels import record_label
from study.results.rd import json_safe
from study.results.report import compared_images_text
from study.results.statistics import PairedSummary
from study.results.table import MEAN_OF_IMAGES, metric_table


def aggregation_rule() -> str:
    special = [
        f"{m.display}: {m.aggregation}"
        for m in metric_table()
        if m.plotted and m.aggregation != MEAN_OF_IMAGES
    ]
    return (
        "Dataset curves: each point is the mean over all images of the per-image bpp and metric at "
        f"one rate setting of a codec{' (' + '; '.join(special) + ')' if special else ''}; a "
        "setting missing for some image is left out, and where the curves hold different images "
        "(a study still growing) each is the mean over the images all of them hold at every rate "
        "setting, named in the title. The Pareto front joins the shown points that "
        "no other shown point beats in both rate and quality."
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
section { margin: 1.5em 0; }
#controls label { margin-right: 0.8em; white-space: nowrap; }
#controls div { margin: 0.3em 0; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, td:nth-child(2), td:nth-child(3) { text-align: left; }
.crops { display: flex; flex-wrap: wrap; gap: 0.8em; }
.crops figure { margin: 0; }
.crops img { image-rendering: pixelated; width: 240px; height: 240px; }
.crops figcaption { font-size: 0.8em; max-width: 240px; }
.note { color: #555; font-size: 0.9em; }
"""


def _bd_table(rows: list[dict], metrics: list[dict]) -> str:
    if not rows:
        return (
            "<p class=note>No BD-rate: it needs each codec's published loss and another loss.</p>"
        )

    def cell(row: dict, key: str) -> str:
        curve = row[f"bd_rate_{key}"]
        images = row[f"bd_rate_{key}_images"]
        text = "n/a" if curve is None else f"{curve:+.2f} %"
        if shared := compared_images_text(row):  # a growing study: the pair's common images
            text += f" <small>({html.escape(shared)})</small>"
        if images is not None:
            text += f"<br><small>{html.escape(PairedSummary(**images).describe())}</small>"
        return f"<td>{text}</td>"

    body = "".join(
        f"<tr><td>{html.escape(r['codec'])}</td><td>{html.escape(r['loss'])}</td>"
        f"<td>{html.escape(r['anchor'])}</td>"
        + "".join(cell(r, m["key"]) for m in metrics)
        + "</tr>"
        for r in rows
    )
    heads = "".join(f"<th>{html.escape(m['label'])}</th>" for m in metrics)
    return (
        f"<table id=bd-rate><tr><th>codec</th><th>loss</th><th>anchor</th>{heads}</tr>{body}"
        "</table><p class=note>BD-rate against the loss the codec was published with (negative: "
        "fewer bits for the same quality), PCHIP on the overlapping range: between the dataset "
        "curves (first line) and image by image (second line: mean of the per-image BD-rates "
        "[95 % bootstrap interval], two-sided Wilcoxon signed-rank p-value, number of images). "
        "Where the two curves hold different images (a study still growing), the dataset curves "
        "are means over the images both hold at every rate setting, named in the cell.</p>"
    )


def _claims_table(verdicts: list[Verdict]) -> str:
    if not verdicts:
        return "<p class=note>No claim of the paper speaks of these curves.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(v.claim.id)}</td><td>{html.escape(v.claim.section)}</td>"
        f"<td>{html.escape(v.claim.says)}</td><td><b>{html.escape(v.outcome)}</b></td>"
        f"<td>{' / '.join(map(str, v.counts))}</td></tr>"
        for v in verdicts
    )
    return (
        "<table id=claims-table><tr><th>claim</th><th>where</th><th>the paper says</th>"
        f"<th>verdict here</th><th>lines holding / not / undecided / n/a</th></tr>{rows}</table>"
        "<p class=note>Each claim, in our words, judged on the images this study holds by one "
        "rule: each line (a loss against a loss or a classical codec, in one metric, by BD-rate or "
        "at one rate setting) holds or not where the 95 % t-interval of its per-image values lies "
        "clear of zero, or inside or beyond an equivalence margin; otherwise it is undecided. "
        "<code>reports/claims.md</code> has every line with its numbers.</p>"
    )


def _crops(shown: ShownCrops) -> str:
    if shown.waiting:
        return f"<p class=note>No decoded crops yet: no grid run on {html.escape(shown.image)}.</p>"
    if not shown.crops:
        return "<p class=note>No decoded crops: the study has no grid runs.</p>"
    figures = "".join(
        f"<figure><img alt='{html.escape(c.caption)}' src='data:image/png;base64,{c.png_base64}'>"
        f"<figcaption>{html.escape(c.caption)}</figcaption></figure>"
        for c in shown.crops
    )
    rates = [c.bpp for c in shown.crops if c.bpp is not None]
    return (
        f"<p class=note id=crops-note>{html.escape(shown.image)}: each curve's run nearest the "
        f"target, {shown.target_bpp:.3f} bpp (in log rate; choose with --crops-image / "
        f"--crops-bpp); shown: {min(rates):.3f} to {max(rates):.3f} bpp, each caption with its "
        f"own bpp and its distance from the target.</p><div class=crops>{figures}</div>"
    )


def live_payload(
    data: StudyData, references: Sequence[dict] = (), reference_notes: Sequence[str] = ()
) -> dict:
    """What a live page refreshes: the runs, a match-mode search's α at matched rate (as the α
    tables judge them), the declarations of the metrics, codecs and loss families they use, each
    curve's style, and the reference curves matched to the runs' images (with their notes)."""
    return json_safe(
        {
            # Each run with its curve's label, the key of the styles below.
            "records": [record | {"curve": record_label(record)} for record in data.records],
            "references": list(references),
            "reference_notes": list(reference_notes),
            "curve_images": data.curve_images,
            "curve_images_text": data.curve_images_text(),
            "alpha_rows": alpha_points(data),
            "alpha_metric": data.alpha_rule.metric if data.alpha_rule else None,
            "metric_notes": metric_notes(data),
            **vocabulary(data.records),
            "style": page_style(data.records),
        }
    )


def served_payload(
    data: StudyData,
    references: Sequence[dict] = (),
    reference_notes: Sequence[str] = (),
    crops: ShownCrops | None = None,
) -> dict:
    """What a served page's ``data.json`` sends: the live payload, and what the page otherwise
    draws once: the BD-rate and claims tables and the decoded crops (when chosen again at each
    look)."""
    payload = live_payload(data, references, reference_notes)
    payload["bd_html"] = _bd_table(data.bd_rates, payload["bd_metrics"])
    payload["claims_html"] = _claims_table(data.claims)
    if crops is not None:
        payload["crops_key"] = crops.key
        payload["crops_html"] = _crops(crops)
    return payload


def write_shared_plotly(folder: Path) -> Path:
    """``folder/plotly-VERSION.min.js``, written where missing: the one copy of plotly.js that
    pages published side by side load (4.6 MiB each when inlined)."""
    path = Path(folder) / f"plotly-{get_plotlyjs_version()}.min.js"
    script = get_plotlyjs()
    if not path.is_file() or path.read_text(encoding="utf-8") != script:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script, encoding="utf-8")
    return path


def _plotly_element(src: str | None) -> str:
    if src is None:
        return f"<script>{get_plotlyjs()}</script>"
    # A page copied away from its shared plotly.js says so instead of staying blank.
    missing = json.dumps(f"plotly.js was not found at {src}, which this page loads")
    missing = missing.replace("</", "<\\/")  # "</" would end the script element
    return (
        f'<script src="{html.escape(quote(src))}"></script>'
        "<script>window.Plotly || addEventListener('DOMContentLoaded', () => "
        "document.body.prepend(Object.assign(document.createElement('p'), "
        f"{{textContent: {missing}}})))</script>"
    )


def render(
    data: StudyData,
    *,
    references: list[dict],
    crops: ShownCrops = NO_CROPS,
    mlflow_ui: str,
    live_seconds: float | None = None,
    reference_notes: Sequence[str] = (),
    plotly_src: str | None = None,
) -> str:
    """The page; with ``live_seconds`` it polls ``data.json`` (see :func:`served_payload`);
    ``reference_notes`` say which references were left out or are not the study's images;
    ``plotly_src``: load plotly.js from there (relative to the page) instead of inlining it."""
    live = live_payload(data, references, reference_notes)
    payload = json_safe(
        {
            **live,
            # Filled in per point by the page: each run's page in MLflow's classic view.
            "run_url": run_url(mlflow_ui, "{experiment}", "{run}"),
            "live_seconds": live_seconds,
        }
    )
    # "</" inside a script element would end it early.
    data_json = json.dumps(payload).replace("</", "<\\/")
    script = resources.files("dashboards").joinpath("static/dashboard.js").read_text()
    title = html.escape(data.title)
    notes = "".join(f"<p class=note>{html.escape(note)}</p>" for note in reference_notes)
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>inr-study: {title}</title>
<style>{STYLE}</style>
{_plotly_element(plotly_src)}</head>
<body>
<h1>inr-study: {title}</h1>
<p class=note><span id=run-count>{len(data.records)}</span> finished trials.
{aggregation_rule()}</p>
<section id=controls>
<div><label>metric <select id=metric></select></label>
<label>image <select id=image></select></label></div>
<div id=codecs>codecs: </div>
<div id=losses>losses: </div>
</section>
<div id=rd-plot style="height: 620px"></div>
<p id=metric-note class=note></p>
<p id=rate-notes class=note></p>
<div id=reference-notes>{notes}</div>
<p id=selected-run>Selected run (click a point of one image's curve): <a id=run-link></a></p>
<section><h2>BD-rate</h2><div id=bd-rates>{_bd_table(data.bd_rates, live["bd_metrics"])}</div>
</section>
<section><h2>The paper's claims</h2><div id=claims>{_claims_table(data.claims)}</div></section>
<section><h2>α tuning at matched rate</h2><div id=alpha-plot style="height: 450px"></div></section>
<section><h2>Search Pareto fronts</h2><div id=pareto-plot style="height: 450px"></div></section>
<section><h2>Decoded crops</h2><div id=decoded-crops>{_crops(crops)}</div>
</section>
<script id=study-data type=application/json>{data_json}</script>
<script>{script}</script>
</body></html>
"""
