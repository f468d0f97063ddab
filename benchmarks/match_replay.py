"""Fits per rate match, replayed on a published match study's own rate curves: cold starts
against starts from earlier fits (hints).

    python benchmarks/match_replay.py [results/tune-alpha-cpu]

Every (codec, image, loss) the study fitted at three or more λ gives a rate curve: log bpp,
piecewise linear in log λ through its fits (extended along its end segments). Each task × α ×
image whose target that curve spans is matched again by the study's own matcher (``run_image``),
in the study's order (task by task, α by α, image by image), twice: starting cold (mid-range, as
before 2026-12-05) and starting from the fits this replay has made so far (what a real search has
in MLflow). It prints the fits per match of both, the matches on target, and the study's own
recorded fits per match. No fitting: it runs in seconds.
"""

import argparse
import bisect
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from study.config import load_config
from study.engine.plan import image_options
from study.engine.search import run_image, search_tasks


def rate_curves(trials: list[dict]) -> dict:
    """(codec, image, loss) -> a function of λ giving bpp, for those fitted at 3+ λ, with the
    range of bpp its fits span."""
    points = defaultdict(dict)
    for trial in trials:
        spec = trial["spec"]
        if isinstance(spec["rate"], float):
            points[spec["codec"], spec["image"], spec["loss"]][spec["rate"]] = trial["metrics"][
                "bpp"
            ]
    curves = {}
    for key, fits in points.items():
        if len(fits) >= 3:
            pairs = sorted((math.log(rate), math.log(bpp)) for rate, bpp in fits.items())
            us, logs = [u for u, _ in pairs], [b for _, b in pairs]
            curves[key] = (_interpolant(us, logs), math.exp(min(logs)), math.exp(max(logs)))
    return curves


def _interpolant(us: list[float], logs: list[float]):
    def bpp(rate: float) -> float:
        u = math.log(rate)
        i = min(max(bisect.bisect(us, u), 1), len(us) - 1)  # the segment, the end ones extended
        (u0, b0), (u1, b1) = (us[i - 1], logs[i - 1]), (us[i], logs[i])
        return math.exp(b0 + (b1 - b0) * (u - u0) / (u1 - u0))

    return bpp


def replay(folder: Path) -> None:
    config = load_config(folder / "study.yaml")
    trials = [json.loads(line) for line in (folder / "trials.jsonl").open()]
    curves = rate_curves(trials)
    variant = image_options(config).label()
    search = config.search
    fits = {"cold": [], "hints": []}
    reached = {"cold": 0, "hints": 0}
    records = []  # the hinted replay's fits so far, as a study's records hold them
    for task in search_tasks(config):
        for alpha in search.alphas.get(task.family, [None]):
            for image in config.images.subset:
                curve = curves.get((task.codec.name, image, task.loss(alpha)))
                if curve is None or not curve[1] <= task.target_bpp <= curve[2]:
                    continue
                for mode in ("cold", "hints"):
                    made = []

                    def fit(spec, curve=curve, made=made):
                        metrics = {"bpp": curve[0](spec.rate), search.metric: 0.0}
                        made.append({**spec.params(), "rate": spec.rate, "trial_key": spec.key,
                                     **metrics})  # fmt: skip
                        return metrics

                    outcome = run_image(task, {"alpha": alpha}, image, fit, search=search,
                                        metric=search.metric, variant=variant,
                                        earlier=records if mode == "hints" else ())  # fmt: skip
                    fits[mode].append(outcome.fits)
                    reached[mode] += outcome.reached
                    if mode == "hints":
                        records += made
    recorded = defaultdict(int)
    for trial in trials:
        spec = trial["spec"]
        recorded[spec["search"], spec["loss"], spec["image"]] += 1
    print(f"{folder}: {len(fits['cold'])} matches replayed on the study's own rate curves")
    for mode in ("cold", "hints"):
        print(f"  {mode:5}: {statistics.mean(fits[mode]):.2f} fits per match "
              f"(median {statistics.median(fits[mode])}, max {max(fits[mode])}), "
              f"{reached[mode]} of {len(fits[mode])} on target")  # fmt: skip
    print(f"  recorded in the study: {statistics.mean(recorded.values()):.2f} fits per "
          f"(task, α, image) over {len(recorded)}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("published", nargs="?", default="results/tune-alpha-cpu", type=Path)
    replay(parser.parse_args(argv).published)
    return 0


if __name__ == "__main__":
    sys.exit(main())
