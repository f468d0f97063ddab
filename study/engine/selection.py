"""Picking some of a study's trials or search tasks by field: ``--where codec=nif,loss=mse``.

``shard``, ``export`` and ``archive`` pick trials; ``run`` and ``resume`` pick trials of a grid
or whole tasks of a search, to spend a short stint of compute on one part of a study.
"""

from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar

from study.engine.trial import TrialSpec
from study.errors import InputError

if TYPE_CHECKING:
    from study.config import StudyConfig

Item = TypeVar("Item")
Where = dict[str, set[str]]

TRIAL_FIELDS: dict[str, Callable[[TrialSpec], str]] = {
    f.name: (lambda spec, name=f.name: str(getattr(spec, name))) for f in fields(TrialSpec)
}


class SelectionError(InputError):
    """A ``--where`` that is malformed or picks nothing the study has."""


def parse_where(text: str | None) -> Where:
    """``codec=nif,loss=mse,loss=l1`` -> {field: accepted values}: fields AND, values OR."""
    where: Where = {}
    for item in filter(None, (text or "").split(",")):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise SelectionError(f"--where {item!r}: expected FIELD=VALUE")
        where.setdefault(name.strip(), set()).add(value.strip())
    return where


def select(
    items: Iterable[Item],
    where: Where,
    fields_of: dict[str, Callable[[Item], str]] = TRIAL_FIELDS,
    kind: str = "trial",
) -> list[Item]:
    """The items whose fields match ``where``; a field the items lack, or a value none of them
    has, is an error naming what there is."""
    items = list(items)
    for name, values in where.items():
        if name not in fields_of:
            raise SelectionError(
                f"--where {name}=...: a {kind} has no field {name!r}; "
                f"give one of {', '.join(fields_of)}"
            )
        present = {fields_of[name](item) for item in items}
        unknown = sorted(values - present)
        if unknown:
            raise SelectionError(
                f"--where {name}={'|'.join(unknown)} matches no {kind} of the study; its "
                f"{name} values: {', '.join(sorted(present))}"
            )
    picked = [
        item
        for item in items
        if all(fields_of[name](item) in values for name, values in where.items())
    ]
    if where and not picked:
        raise SelectionError(
            f"--where {format_where(where)}: no {kind} of the study has all of these at once"
        )
    return picked


def format_where(where: Where) -> str:
    return ",".join(f"{name}={value}" for name, values in where.items() for value in sorted(values))


def pick(config: "StudyConfig", image_names: list[str], where: Where) -> tuple[list, int]:
    """What a run given ``where`` works on — a grid's trials, a search's whole tasks (a sample
    fits every image) — and how many the study has."""
    if config.search is None:
        from study.engine.plan import grid_trials

        trials = grid_trials(config, image_names)
        return select(trials, where), len(trials)
    from study.engine.tasks import TASK_FIELDS, search_tasks

    tasks = search_tasks(config)
    return select(tasks, where, TASK_FIELDS, "search task"), len(tasks)
