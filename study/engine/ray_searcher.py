"""One Ray Tune search fed by many Optuna studies: every search task's samples share the cluster."""

import json
from collections import Counter
from pathlib import Path

from ray.tune.search import Searcher

from study.engine.search import tell


class MultiTaskSearcher(Searcher):
    """Feeds one Tune run with the samples of every search task, each from its own Optuna study,
    so all tasks share the cluster; at most ``concurrent`` samples of a task are in flight, so
    Optuna learns from earlier samples before it proposes many more."""

    def __init__(self, tasks, studies: dict, spaces: dict, remaining: dict, concurrent: int):
        super().__init__()
        self.tasks, self.studies, self.spaces = tasks, studies, spaces
        self.remaining, self.concurrent = dict(remaining), concurrent
        self.pending: dict[str, tuple] = {}  # Tune trial id -> (task name, Optuna trial)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # objectives are the tasks' own, told to Optuna directly

    def suggest(self, trial_id: str):
        in_flight = Counter(name for name, _ in self.pending.values())
        open_tasks = [
            t
            for t in self.tasks
            if self.remaining[t.name] > 0 and in_flight[t.name] < self.concurrent
        ]
        if not open_tasks:
            return Searcher.FINISHED if not any(self.remaining.values()) else None
        task = min(open_tasks, key=lambda t: (in_flight[t.name], -self.remaining[t.name]))
        trial = self.studies[task.name].ask(self.spaces[task.name])
        self.remaining[task.name] -= 1
        self.pending[trial_id] = (task.name, trial)
        return {"task": task.name, "sample": dict(trial.params)}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        name, trial = self.pending.pop(trial_id)
        objective = None if error or not result else result.get("objective")
        tell(self.studies[name], trial, objective)

    def save(self, checkpoint_path: str) -> None:
        # Everything worth keeping is in the tasks' Optuna studies (optuna.db) and MLflow.
        Path(checkpoint_path).write_text(json.dumps(self.remaining))

    def restore(self, checkpoint_path: str) -> None:
        self.remaining = json.loads(Path(checkpoint_path).read_text())
