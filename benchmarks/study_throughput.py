"""Study-engine throughput on this machine: trials per hour of a demo-sized study with 1 and 2
concurrent trials, and the per-trial overhead of Ray + MLflow (seconds outside ``run_trial``).

    python benchmarks/study_throughput.py [--config study/configs/demo.yaml] [--concurrency 1,2]

Each concurrency level runs the whole study in a fresh folder (fresh Ray, fresh SQLite store).
overhead per trial = (wall × concurrency − Σ trial_seconds) / trials, where trial_seconds is the
time spent inside ``run_trial`` (fit, file, decode, metrics); it therefore includes Ray start-up,
scheduling, the recorder's MLflow writes and slots left idle at the end, spread over the trials.
"""

import argparse
import tempfile
import time
from pathlib import Path

from study.config import load_config
from study.engine.runner import Study
from study.engine.tracking import RunStore


def measure(config_path: Path, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="inr-study-bench-") as folder:
        config = load_config(
            config_path,
            {"storage": folder, "max_concurrent": concurrency, "optional_metrics": False},
        )
        start = time.perf_counter()
        result = Study(config).run()
        wall = time.perf_counter() - start
        records = RunStore(result.tracking_uri, result.experiment).records()
    inside = sum(r["trial_seconds"] for r in records)
    trials = len(records)
    return {
        "concurrency": concurrency,
        "trials": trials,
        "wall_s": wall,
        "trials_per_hour": 3600 * trials / wall,
        "mean_trial_s": inside / trials,
        "overhead_per_trial_s": (wall * concurrency - inside) / trials,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("study/configs/demo.yaml"))
    parser.add_argument("--concurrency", default="1,2")
    args = parser.parse_args()
    rows = [measure(args.config, int(c)) for c in args.concurrency.split(",")]
    print(f"\n{args.config}:")
    print("concurrent  trials  wall (s)  trials/hour  mean in-trial (s)  overhead/trial (s)")
    for r in rows:
        print(
            f"{r['concurrency']:>10}  {r['trials']:>6}  {r['wall_s']:>8.1f}  "
            f"{r['trials_per_hour']:>11.0f}  {r['mean_trial_s']:>17.2f}  "
            f"{r['overhead_per_trial_s']:>18.2f}"
        )


if __name__ == "__main__":
    main()
