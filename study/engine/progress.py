"""A live, readable status of a running study: one progress bar with done / running / failed counts
and the best result so far, plus one line per failed trial. Replaces Ray Tune's tables.

Its methods have the names and signatures of Ray Tune's callback hooks; the runner mixes it into a
``tune.Callback``, so this module needs no Ray.
"""

import re
from pathlib import Path

from tqdm import tqdm

from study.results.table import get_metric

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def last_error_line(text: str | None) -> str:
    """The exception line of a traceback (Ray wraps it in colour codes and its own frames)."""
    lines = [_ANSI.sub("", line).strip() for line in (text or "").splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line):
            return line
    return lines[-1] if lines else "unknown error"


def _error_file_text(trial) -> str | None:
    try:
        return (Path(trial.local_path) / "error.txt").read_text()
    except (AttributeError, TypeError, OSError):
        return None


class StudyProgress:
    """Counts trials and tracks the best value of ``metric`` among finished trials.

    ``on_failure(trial_config, tune_error_text)`` records a failed trial and returns the error text
    to show."""

    def __init__(self, total: int, metric: str, label: str, describe, on_failure=None, size=None):
        self.metric, self.describe, self.on_failure = metric, describe, on_failure
        # Study trials in one Tune trial (a batch of fits); one by default.
        self.size = size or (lambda config: 1)
        self.oriented = get_metric(metric).oriented
        self.total, self.label = total, label
        self.running, self.failed, self.done, self.best = 0, 0, 0, None
        self.bar = None

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment state; a live bar is not picklable.
        return {**self.__dict__, "bar": None}

    def setup(self, **info):
        self.bar = tqdm(total=self.total, desc=self.label, unit="trial", dynamic_ncols=True)
        self._refresh()

    def _refresh(self) -> None:
        best = "—" if self.best is None else f"{self.best[0]:.4g} ({self.best[1]})"
        self.bar.set_postfix_str(
            f"running {self.running}, failed {self.failed}, best {self.metric} {best}"
        )

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running += 1
        self._refresh()

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.running -= 1
        attempt = trial.run_metadata.num_failures + 1
        self.bar.write(
            f"retrying {self.describe(trial.config)} after a failure (attempt {attempt})"
        )

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running -= 1
        self._consider(trial.last_result or {}, trial.config)
        self.done += self.size(trial.config)
        self.bar.update(self.size(trial.config))
        self._refresh()

    def _consider(self, result: dict, config: dict) -> None:
        value = result.get(self.metric)
        if value is not None and (
            self.best is None or self.oriented(value) > self.oriented(self.best[0])
        ):
            self.best = (value, self.describe(config))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running -= 1
        self.failed += self.size(trial.config)  # a batch's finished fits are counted next run
        # Tune's error text can lag behind this callback; its error file is usually there.
        error = trial.get_error() or _error_file_text(trial) or "unknown error"
        if self.on_failure is not None:
            error = self.on_failure(trial.config, error)
        self.bar.write(f"FAILED {self.describe(trial.config)}: {last_error_line(error)}")
        self.done += self.size(trial.config)
        self.bar.update(self.size(trial.config))
        self._refresh()

    def on_experiment_end(self, trials, **info):
        self.bar.close()

    @property
    def counts(self) -> dict[str, int]:
        return {"finished": self.done - self.failed, "failed": self.failed}


class SearchProgress(StudyProgress):
    """The search's bar: samples done, how many landed on target on every image, and the best
    sample among those (never an off-target one); each task's unreachable target said once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_target, self.told_unreachable = 0, set()

    def _refresh(self) -> None:
        best = "—" if self.best is None else f"{self.best[0]:.4g} ({self.best[1]})"
        self.bar.set_postfix_str(
            f"running {self.running}, failed {self.failed}, on target {self.on_target}/"
            f"{self.done - self.failed}, best on target {self.metric} {best}"
        )

    def _consider(self, result: dict, config: dict) -> None:
        if result.get("unreachable") and config["task"] not in self.told_unreachable:
            self.told_unreachable.add(config["task"])
            self.bar.write(f"{config['task']}: target unreachable ({result['unreachable']})")
        self.on_target += bool(result.get("on_target"))
        if result.get("on_target", True):  # pareto samples have no target
            super()._consider(result, config)
