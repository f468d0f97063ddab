"""Fits per rate match, replayed on a published match study's own rate curves: cold starts
against starts from earlier fits (hints).

    python benchmarks/match_replay.py [results/tune-alpha-cpu]

Every (codec, image, loss) the study fitted at three or more λ gives a rate curve: log bpp,
piecewise linear in log λ through its fits (extended along its end segments). Each task × α ×
image whose target that curve spans is matched again by the study's own matcher (``run_image``),
in the order a search with one sample in flight runs them (each task's first α, then each task's
second, ...; a sample's images one after another), twice: starting cold (mid-range, as before
2026-12-05) and starting from the fits this replay has made so far (what a real search finds in
MLflow). It prints the fits per match of both, by what the hints were, the matches on target, and
what the study paid for the same matches. Only matches whose target the study's fits span can be
replayed, so the hardest ones (targets a codec barely reaches) are left out. No fitting: seconds.
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
from study.engine.tasks import earlier_fits, run_image, search_tasks
from study.results.alpha import task_target
from study.results.rate_targets import on_target


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


def search_order(config) -> list[tuple]:
    """(task, α) in the order a search hands samples out with one in flight
    (``MultiTaskSearcher``): the task with the most samples left, ties by the config's order, so
    each task's first α, then each task's second, ..."""
    tasks = search_tasks(config)
    grids = {t.name: config.search.alphas.get(t.family, [None]) for t in tasks}
    return [
        (task, grids[task.name][index])
        for index in range(max(len(grid) for grid in grids.values()))
        for task in tasks
        if index < len(grids[task.name])
    ]


def hint_kind(task, alpha, image: str, variant: str, seed: int, records: list[dict]) -> str:
    """What ``earlier_fits`` gives this match to start from."""
    _, hints, on_curve = earlier_fits(
        task, alpha, records, lambda rate: task.trial_spec(alpha, rate, image, variant, seed)
    )
    return "same loss" if on_curve else "neighbouring α" if hints else "none"


def replay(folder: Path) -> None:
    config = load_config(folder / "study.yaml")
    trials = [json.loads(line) for line in (folder / "trials.jsonl").open()]
    curves = rate_curves(trials)
    recorded, finished = defaultdict(int), set()
    for trial in trials:
        spec = trial["spec"]
        match = (spec["search"], spec["loss"], spec["image"])
        recorded[match] += 1
        target = task_target(spec["search"])
        if on_target(trial["metrics"]["bpp"], target, config.search.tolerance):
            finished.add(match)
    variant = image_options(config).label()
    search = config.search
    fits = {"cold": [], "hints": []}
    like_for_like = defaultdict(list)  # on the matches the study itself finished
    by_kind = defaultdict(list)
    reached = defaultdict(int)
    records = []  # the hinted replay's fits so far, as a study's records hold them
    for task, alpha in search_order(config):
        loss = task.loss(alpha)
        for image in config.images.subset:  # one after another, as on one CPU
            curve = curves.get((task.codec.name, image, loss))
            if curve is None or not curve[1] <= task.target_bpp <= curve[2]:
                continue
            kind = hint_kind(task, alpha, image, variant, search.seed, records)
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
                    by_kind[kind].append(outcome.fits)
                if (task.name, loss, image) in finished:
                    like_for_like[mode].append(outcome.fits)
            if (task.name, loss, image) in finished:
                like_for_like["study"].append(recorded[task.name, loss, image])
    count = len(fits["cold"])
    print(f"{folder}: {count} matches replayed on the study's own rate curves (those whose target")
    print("  the study's fits of that loss and image span), in the search's order")
    for mode in ("cold", "hints"):
        print(f"  {mode:5}: {statistics.mean(fits[mode]):.2f} fits per match "
              f"(median {statistics.median(fits[mode])}, max {max(fits[mode])}), "
              f"{reached[mode]} of {count} on target")  # fmt: skip
    for kind, counts in sorted(by_kind.items()):
        print(f"    hints from {kind}: {statistics.mean(counts):.2f} over {len(counts)} matches")
    study = like_for_like["study"]
    print(f"  the {len(study)} of them the study itself finished: it paid "
          f"{statistics.mean(study):.2f} fits per match; replayed cold "
          f"{statistics.mean(like_for_like['cold']):.2f}, from earlier fits "
          f"{statistics.mean(like_for_like['hints']):.2f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("published", nargs="?", default="results/tune-alpha-cpu", type=Path)
    replay(parser.parse_args(argv).published)
    return 0


if __name__ == "__main__":
    sys.exit(main())
