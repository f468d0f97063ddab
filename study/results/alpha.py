"""Loss weights at matched rate, from a match-mode search's fits (``alpha_tables`` writes them).

For each task (codec × loss family × target bitrate) and each α measured, the fit that counts on
an image is the one closest to the target (as the rate matcher chose it; recomputed from the fits,
so a published copy gives the same table). Per task, the best α by the search metric among those
on target on every image, and per image the paired difference of the best α against the family's
default α (the published one, where the family names its source) and against α = 0 (the loss
without its weighted term), with a t-interval over images: does the best α differ from the
default (the paper's, for the paper's losses), and by more than the spread of images?
The α that the best does not clearly beat are listed with it. Per codec and target, each family's
best side by side, and the better family against the others: the loss weights to pick per
architecture and rate. Where the study plans a grid of α, a best chosen before every α of the
grid is on target on every image is the best so far, and says so. Last, each image an α missed
the target on, with the fits nearest the target on either side: a file size that jumps across
the target between close settings is a property of the fits, which no setting in between can fix.
"""

from collections import defaultdict

from losses import get_family
from study.results.rate_targets import match_rank
from study.results.statistics import exact_mean, summarise
from study.results.table import get_metric


def task_name(codec: str, family: str, target_bpp: float | None) -> str:
    """A search task's name: ``codec/family/0.25bpp``, or ``codec/family/pareto``."""
    target = "pareto" if target_bpp is None else f"{target_bpp:g}bpp"
    return f"{codec}/{family}/{target}"


def task_target(name: str) -> float | None:
    """The target bitrate in a task's name; None for a Pareto task."""
    last = name.rsplit("/", 1)[-1]
    return float(last.removesuffix("bpp")) if last.endswith("bpp") else None


def task_family(name: str) -> str:
    """The loss family in a task's name."""
    return name.split("/")[-2]


def matched_fits(records: list[dict], tolerance: float) -> list[dict]:
    """Per task, α and image, the fit closest to the target (one within the tolerance first,
    ``rate_targets.match_rank``), with ``reached``, ``off_by`` (``rate_targets.off_by``),
    ``target_bpp`` and ``tried`` (every fit of that task, α and image)."""
    tried: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        if task_target(record.get("search") or "") is not None and record.get("bpp") is not None:
            tried[record["search"], record.get("alpha"), record["image"]].append(record)
    matched = []
    for fits in tried.values():
        target = task_target(fits[0]["search"])
        best = min(fits, key=lambda r: (*match_rank(r["bpp"], target, tolerance), r["trial_key"]))
        off, off_by = match_rank(best["bpp"], target, tolerance)
        matched.append(
            {**best, "off_by": off_by, "target_bpp": target, "reached": not off, "tried": fits}
        )
    return sorted(matched, key=lambda f: (f["search"], f["alpha"] or 0.0, f["image"]))


def alpha_rows(
    matched: list[dict],
    metric: str,
    metrics: list[str],
    images: list[str] | None = None,
    grid: dict[str, list[float]] | None = None,
) -> list[dict]:
    """One row per task and α: images, images on target, mean bpp and metrics, the worst image's
    factor from the target (``worst_off_by``, ``rate_targets.off_by``); the task's best
    α marked, and its paired differences against the family's default α and α = 0 in ``metric``
    (where those are on target too). ``images``: the study's, when known; else those fitted.
    ``grid``: the α the study plans per loss family, when it plans a grid; each row then says
    how many of the grid's α are on target on every image (``alphas_in``) of how many
    (``alphas_planned``): the best is settled only when all are (an α that never lands on
    target keeps it "so far": the grid is then not measured at matched rate)."""
    by_task = _by_task(matched)
    rows = []
    for task in sorted(by_task):
        alphas = by_task[task]
        fitted = {image for fits in alphas.values() for image in fits}
        task_images = sorted(fitted.union(images or ()))
        task_rows = []
        for alpha in sorted(alphas, key=lambda a: a or 0.0):
            fits = alphas[alpha]
            values = {m: [fits[i].get(m) for i in task_images if i in fits] for m in metrics}
            complete = len(fits) == len(task_images) and all(v is not None for v in values[metric])
            task_rows.append(
                {
                    "task": task,
                    "codec": next(iter(fits.values()))["codec"],
                    "family": task_family(task),
                    "target_bpp": task_target(task),
                    "alpha": alpha,
                    "images": len(fits),
                    "of": len(task_images),
                    "on_target": sum(f["reached"] for f in fits.values()),
                    "bpp": exact_mean([f["bpp"] for f in fits.values()]),
                    "worst_off_by": max(f["off_by"] for f in fits.values()),
                    **{m: _mean(values[m]) for m in metrics},
                    "complete": complete,
                    "best": False,
                }
            )
        _mark_best(task_rows, alphas, task_images, metric)
        planned = (grid or {}).get(task_family(task))
        alphas_in = sum(
            _on_target_everywhere(r) for r in task_rows if r["alpha"] in (planned or ())
        )
        for row in task_rows:
            row["alphas_in"] = alphas_in
            row["alphas_planned"] = len(planned) if planned else None
        rows += task_rows
    return rows


def _by_task(matched: list[dict]) -> dict[str, dict]:
    """{task: {α: {image: matched fit}}}."""
    by_task: dict[str, dict] = defaultdict(lambda: defaultdict(dict))
    for fit in matched:
        by_task[fit["search"]][fit["alpha"]][fit["image"]] = fit
    return by_task


def _mark_best(task_rows: list[dict], alphas: dict, images: list[str], metric: str) -> None:
    """Marks the task's best α among those on target on every image, with its paired
    differences against the family's default α and α = 0 (where those are on target too) and the
    other α on target it does not clearly beat (``as_good``; None when there is none)."""
    eligible = [r for r in task_rows if _on_target_everywhere(r)]
    if not eligible:
        return
    best = max(eligible, key=lambda r: get_metric(metric).oriented(r[metric]))
    best["best"] = True
    # The best against every other α on target: {α: paired difference}.
    rivals = {
        row["alpha"]: _paired(alphas[best["alpha"]], alphas[row["alpha"]], images, metric)
        for row in eligible
        if row is not best
    }
    family = get_family(best["family"]) if best["family"] else None
    default = family.alpha_default if family is not None else None
    for name, other in (("default", default), ("zero", 0.0)):
        best[f"vs_{name}_alpha"] = other
        best[f"vs_{name}"] = rivals.get(other)
    as_good = [alpha for alpha, difference in rivals.items() if not clearly_better(difference)]
    best["as_good"] = as_good if rivals else None


def _on_target_everywhere(row: dict) -> bool:
    return row["complete"] and row["on_target"] == row["of"]


def settled(row: dict) -> bool:
    """Whether a row's task has every α its study plans on target on every image (always, where
    the study plans no grid): its best is then final, not the best so far."""
    planned = row.get("alphas_planned")
    return planned is None or row["alphas_in"] >= planned


def clearly_better(difference) -> bool:
    """Whether a paired difference (> 0: the first is better) is above 0 beyond its t-interval."""
    return difference is not None and difference.t_low is not None and difference.t_low > 0


def architecture_rows(rows: list[dict], matched: list[dict], metric: str) -> list[dict]:
    """Per codec and target: each family's best α, the best of them (``winner``), and its
    per-image difference against every other family's best (``versus``: [(row, summary)]);
    ``unmatched``: the families measured there with no α on target on every image yet;
    ``settled`` unless a best is the best so far or a family is unmatched."""
    by_task = _by_task(matched)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    measured: dict[tuple, set] = defaultdict(set)
    for row in rows:
        measured[(row["codec"], row["target_bpp"])].add(row["family"])
        if row["best"]:
            groups[(row["codec"], row["target_bpp"])].append(row)
    oriented = get_metric(metric).oriented
    out = []
    for (codec, target), bests in sorted(groups.items()):
        winner = max(bests, key=lambda r: oriented(r[metric]))
        first = by_task[winner["task"]][winner["alpha"]]
        versus = []
        for other in bests:
            if other is not winner:
                second = by_task[other["task"]][other["alpha"]]
                images = sorted(first.keys() | second.keys())
                versus.append((other, _paired(first, second, images, metric)))
        unmatched = sorted(measured[codec, target] - {b["family"] for b in bests}, key=str)
        final = all(settled(b) for b in bests) and not unmatched
        out.append({"codec": codec, "target_bpp": target, "bests": bests, "winner": winner,
                    "versus": versus, "unmatched": unmatched, "settled": final})  # fmt: skip
    return out


def off_target(matched: list[dict], rows: list[dict]) -> list[dict]:
    """Each task, α and image whose closest fit misses the target, for the α measured on every
    image (``rows``: ``alpha_rows``' complete ones; a sample still being fitted is left out):
    how many fits it had and the fits nearest the target above and below it (None where every
    fit fell on the other side)."""
    measured = {(row["task"], row["alpha"]) for row in rows if row["complete"]}
    missed = []
    for fit in (f for f in matched if not f["reached"] and (f["search"], f["alpha"]) in measured):
        tried = fit["tried"]
        above = [r for r in tried if r["bpp"] > fit["target_bpp"]]
        below = [r for r in tried if r["bpp"] < fit["target_bpp"]]
        missed.append(
            {
                "task": fit["search"],
                "alpha": fit["alpha"],
                "image": fit["image"],
                "fits": len(tried),
                "above": min(above, key=lambda r: r["bpp"], default=None),
                "below": max(below, key=lambda r: r["bpp"], default=None),
            }
        )
    return missed


def reseeded(matched: list[dict]) -> list[dict]:
    """The matched fits made with a later seed than the first one tried on their task, α and
    image (a match that went on with further seeds where the rate jumped): the fit, and the seed
    first tried."""
    with_first = ({**f, "first_seed": min(r.get("seed") or 0 for r in f["tried"])} for f in matched)
    return [fit for fit in with_first if (fit.get("seed") or 0) > fit["first_seed"]]


def _mean(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return exact_mean(present) if present and len(present) == len(values) else None


def _paired(first: dict, second: dict, images: list[str], metric: str):
    """Per-image difference first − second in ``metric`` (each {image: fit}), oriented so > 0
    means the first is better; None unless both have it on every image."""
    row = get_metric(metric)
    differences = []
    for image in images:
        a, b = first.get(image), second.get(image)
        if a is None or b is None or a.get(metric) is None or b.get(metric) is None:
            return None
        differences.append(row.oriented(a[metric]) - row.oriented(b[metric]))
    return summarise(differences)
