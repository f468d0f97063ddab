"""Running a work package with plain processes (``inr-study work``): no Ray, no MLflow.

Trials run in the package's order (an image at a time), ``concurrent`` batches at a time on one
device (a batch: up to ``batch`` fits of one codec and preset trained together), each in a worker
process of a pool (one at a time: in this process). A finished trial is a folder
``OUT/trials/KEY/`` holding its file (``bitstream.bin``) and its record (``result.json``: spec,
settings, figures, provenance, validations); the folder appears whole (written aside, then
renamed), so an interrupted run leaves no half trial and a rerun skips what is there. A failed
trial leaves ``OUT/failed/KEY.txt`` and is retried by the next run. A search's package holds
matches instead (``run_match_in_worker``): each fits on until its rate lands on its task's target,
``concurrent`` matches at a time, every fit written as a trial in the same way.
"""

import functools
import io
import multiprocessing
import shutil
import tarfile
import time
import traceback
from collections import Counter
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    as_completed,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from study.engine.package import (
    FAILED_DIR,
    MAX_TRACE_BYTES,
    RESULT_FILE,
    TRIALS_DIR,
    Package,
    read_package,
)
from study.engine.record import TrialRecord
from study.engine.trial import BITSTREAM_NAME, TrialSpec
from study.errors import InputError
from study.layout import CONFIG_FILE, holds_study

PARTIAL_DIR = ".partial"
PACK_PREFIX = "pack-"
# What one archive of ``--pack`` may hold: the most a lent GPU machine sends back per file.
PACK_LIMIT = 16 * 2**20


# How a match of a search's package ended.
ON_TARGET, CLOSEST, OUT_OF_TIME = "on target", "closest", "out of time"


@dataclass
class WorkSummary:
    finished: int = 0  # trials (fits) by this run
    failed: list[str] = field(default_factory=list)  # "label: error" per failed trial
    skipped: int = 0  # finished by an earlier run
    not_started: int = 0  # would not have finished within the time given
    ends: Counter = field(default_factory=Counter)  # a search's package: its matches' ends


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}: this machine has no CUDA device torch can use")
    return device


def finished_keys(out: Path) -> set[str]:
    return {p.parent.name for p in (Path(out) / TRIALS_DIR).glob(f"*/{RESULT_FILE}")}


def _trial_seconds(out: Path) -> dict[str, float]:
    """Wall seconds of the trials finished in ``out``, by codec and preset (the estimate for
    ``--minutes``: the longest seen)."""
    seconds: dict[str, float] = {}
    for path in (Path(out) / TRIALS_DIR).glob(f"*/{RESULT_FILE}"):
        record = TrialRecord.loads(path.read_text(), str(path))
        group = _group(record.spec)
        seconds[group] = max(seconds.get(group, 0.0), record.provenance.get("seconds", 0.0))
    return seconds


def _group(spec: TrialSpec) -> str:
    return f"{spec.codec}/{spec.preset}"


@functools.lru_cache(maxsize=1)
def _worker_package(folder: str) -> Package:
    """The package a worker process serves, read once for all its trials."""
    return read_package(Path(folder))


@functools.lru_cache(maxsize=1)
def _worker_search(folder: str):
    """A search package's study, parsed once per worker: its config, its tasks by name and its
    images' variant label."""
    from study.engine.plan import image_options
    from study.engine.tasks import search_tasks_by_name

    config = _worker_package(folder).study_config()
    return config, search_tasks_by_name(config), image_options(config).label()


def run_trials_in_worker(
    folder: str, indices: list[int], out: str, device: str, threads: int
) -> list[float | str]:
    """Trials of the package at ``folder``, in a worker process, their fits as one batch (see
    ``run_trials``): per trial, its share of the wall seconds, or the error that failed it."""
    package = _worker_package(folder)
    return _run_specs(package, [package.trials[index] for index in indices], out, device, threads)


def _run_specs(
    package: Package, specs: list[TrialSpec], out: str, device: str, threads: int
) -> list[float | str]:
    import socket

    import torch

    from study.config import import_plugins
    from study.engine.provenance import git_commit, machine
    from study.engine.trial import TrialJob, run_trials
    from study.results.evaluation import optional_metrics_available

    import_plugins(list(package.plugins))
    torch.set_num_threads(threads)
    jobs, validations = [], []
    for spec in specs:
        # Written aside, outside trials/, so nothing half-written is ever counted or packed.
        aside = Path(out) / PARTIAL_DIR / f"{spec.key}.{socket.gethostname()}"
        aside.parent.mkdir(exist_ok=True)
        shutil.rmtree(aside, ignore_errors=True)
        validations.append([])
        jobs.append(TrialJob(spec, package.image(spec.image), aside,
                             on_validation=validations[-1].append))  # fmt: skip
    start = time.time()
    outcomes = run_trials(
        jobs,
        device=device,
        with_optional_metrics=package.optional_metrics and optional_metrics_available(),
        extra_metrics=package.extra_metrics,
    )
    seconds = (time.time() - start) / len(jobs)
    commit = git_commit()
    results: list[float | str] = []
    for spec, job, outcome, validated in zip(specs, jobs, outcomes, validations, strict=True):
        if isinstance(outcome, Exception):
            results.append("".join(traceback.format_exception(outcome)))
            continue
        # ``import`` decodes the file again and rebuilds the decoded image and the summary from it.
        for name in ("decoded", "summary"):
            outcome.files[name].unlink()
        record = TrialRecord(
            spec=spec,
            image_digest=package.digests[spec.image],
            settings=outcome.settings,
            metrics=outcome.metrics,
            provenance={
                "executor": "work",
                **machine(device),
                "threads": threads,
                # A copy of the tree without .git (sent to a lent machine) runs the package's code.
                "git_commit": commit if commit != "unknown" else package.commit,
                "package_commit": package.commit,
                "package_part": package.part,
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                "seconds": seconds,
                "fit_batch": len(jobs),
            },
            validations=validated,
            study=package.study,
        )
        (job.out_dir / RESULT_FILE).write_text(record.dumps() + "\n")
        final = Path(out) / TRIALS_DIR / spec.key
        shutil.rmtree(final, ignore_errors=True)
        job.out_dir.rename(final)
        (Path(out) / FAILED_DIR / f"{spec.key}.txt").unlink(missing_ok=True)
        results.append(seconds)
    return results


def run_package(
    package: Package,
    out: Path,
    *,
    concurrent: int = 1,
    device: str = "auto",
    threads: int = 1,
    minutes: float | None = None,
    progress: bool = True,
    batch: int = 1,
) -> WorkSummary:
    """Run the package's unfinished trials; see the module's docstring. ``batch``: up to this
    many consecutive trials of one codec and preset share a worker and fit as one batch."""
    from study.config import import_plugins

    import_plugins(list(package.plugins))  # trial labels name the plugins' codecs
    out = Path(out)
    if holds_study(out):
        raise InputError(
            f"-o {out}: holds a study ({CONFIG_FILE}); give work an output folder of its own, "
            f"then record what it made with: inr-study import STUDY_FOLDER OUTPUT"
        )
    (out / TRIALS_DIR).mkdir(parents=True, exist_ok=True)
    (out / FAILED_DIR).mkdir(exist_ok=True)
    device = resolve_device(device)
    if package.matches:
        return _run_matches(package, out, concurrent, device, threads, minutes, progress)
    done = finished_keys(out)
    queue = [i for i, spec in enumerate(package.trials) if spec.key not in done]
    summary = WorkSummary(skipped=len(package.trials) - len(queue))
    deadline = None if minutes is None else time.monotonic() + 60 * minutes
    seconds = _trial_seconds(out)
    bar = tqdm(
        total=len(queue), desc=f"{package.study} part {package.part}", unit="trial",
        disable=not progress, dynamic_ncols=True,
    )  # fmt: skip
    running: dict[Future, list[int]] = {}
    with _executor(concurrent) as pool:
        while queue or running:
            while queue and len(running) < concurrent:
                indices = _next_batch(queue, package.trials, batch)
                if not _starts_in_time(package.trials[indices[0]], len(indices), seconds, deadline):
                    summary.not_started += len(indices)
                    bar.update(len(indices))
                    continue
                try:
                    future = pool.submit(
                        run_trials_in_worker, str(package.folder), indices, str(out), device,
                        threads,
                    )  # fmt: skip
                except BrokenProcessPool:  # a worker died (out of memory): the rest wait
                    for index in indices:
                        summary.failed.append(f"{package.trials[index].label()}: the pool broke")
                    queue.clear()
                    break
                running[future] = indices
            if not running:
                break
            bar.set_postfix_str(f"running {len(running)}, failed {len(summary.failed)}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                indices = running.pop(future)
                try:
                    results = future.result()
                except Exception as error:  # the whole batch failed (a worker died)
                    results = ["".join(traceback.format_exception(error))] * len(indices)
                for index, result in zip(indices, results, strict=True):
                    _tally(summary, seconds, out, package.trials[index], result)
                    bar.update()
    bar.close()
    return summary


class _OutOfTime(Exception):
    """A match's next fit would not finish before the deadline."""


class _FitFailed(Exception):
    def __init__(self, key: str, trace: str):
        self.key, self.trace = key, trace


def run_match_in_worker(
    folder: str, index: int, out: str, device: str, threads: int, deadline: float | None
) -> dict:
    """Match ``index`` of the package at ``folder``, in a worker process: fits until its rate
    lands, as the study's driver fits it (``tasks.run_image``, from the package's earlier fits
    and those already in ``out``), each fit written to ``out`` as a trial; a fit already there
    is read, not made again. Returns the fits made and how the match ended (ON_TARGET, CLOSEST,
    OUT_OF_TIME), or the error (with the failed fit's key where a fit failed)."""
    from study.engine.tasks import run_image

    package = _worker_package(folder)
    match = package.matches[index]
    config, tasks, variant = _worker_search(folder)
    task = tasks.get(match.search)
    grid = config.search.alphas.get(task.family, [None]) if task else []
    if match.alpha not in grid:  # a search task of the study, and an α of its grid
        return {"made": 0, "error": f"{match.label()}: not a match of study {package.study}"}
    made = []

    def fit(spec: TrialSpec) -> dict:
        result = Path(out) / TRIALS_DIR / spec.key / RESULT_FILE
        if not result.is_file():
            seconds = _trial_seconds(Path(out)) if deadline is not None else {}
            if not _starts_in_time(spec, 1, seconds, deadline, clock=time.time):
                raise _OutOfTime
            (outcome,) = _run_specs(package, [spec], out, device, threads)
            if isinstance(outcome, str):
                raise _FitFailed(spec.key, outcome)
            made.append(spec.key)
        return TrialRecord.loads(result.read_text(), str(result)).metrics

    written = _fits_written(Path(out), match.image)
    earlier = list({fit["trial_key"]: fit for fit in [*package.fits, *written]}.values())
    try:
        outcome = run_image(task, {"alpha": match.alpha}, match.image, fit, search=config.search,
                            metric="bpp", variant=variant, earlier=earlier)  # fmt: skip
    except _OutOfTime:
        return {"made": len(made), "end": OUT_OF_TIME}
    except _FitFailed as failed:
        return {"made": len(made), "key": failed.key, "error": failed.trace}
    return {"made": len(made), "end": ON_TARGET if outcome.reached else CLOSEST}


def _fits_written(out: Path, image: str) -> list[dict]:
    """The fits on ``image`` finished in ``out``, as a match reads them."""
    from study.engine.package import record_fit

    fits = []
    for path in (out / TRIALS_DIR).glob(f"*/{RESULT_FILE}"):
        fit = record_fit(TrialRecord.loads(path.read_text(), str(path)))
        if fit is not None and fit["image"] == image:
            fits.append(fit)
    return fits


def _run_matches(
    package: Package,
    out: Path,
    concurrent: int,
    device: str,
    threads: int,
    minutes: float | None,
    progress: bool,
) -> WorkSummary:
    """Every match of a search's package, ``concurrent`` at a time (a match's fits follow one
    another: each is aimed by the ones before); a match that cannot fit on before the deadline
    stops, and a later run (or package) goes on from its fits."""
    deadline = None if minutes is None else time.time() + 60 * minutes
    summary = WorkSummary()
    bar = tqdm(
        total=len(package.matches), desc=f"{package.study} part {package.part}", unit="match",
        disable=not progress, dynamic_ncols=True,
    )  # fmt: skip

    def tally(future: Future, match) -> None:
        try:
            result = future.result()
        except Exception as error:  # the worker died (out of memory, say), or OUT is damaged
            result = {"made": 0, "error": "".join(traceback.format_exception(error))}
        summary.finished += result["made"]
        if "error" in result:
            if "key" in result:  # a fit failed: its trace, as a trial's
                (out / FAILED_DIR / f"{result['key']}.txt").write_text(result["error"])
            summary.failed.append(f"{match.label()}: {result['error'].strip().splitlines()[-1]}")
            tqdm.write(f"failed: {summary.failed[-1]}")
        else:
            summary.ends[result["end"]] += 1
        bar.set_postfix_str(f"fits {summary.finished}, failed {len(summary.failed)}")
        bar.update()

    with _executor(concurrent) as pool:
        running = {}
        for index, match in enumerate(package.matches):
            future = pool.submit(run_match_in_worker, str(package.folder), index, str(out), device,
                                 threads, deadline)  # fmt: skip
            if future.done():  # run in this process (--concurrent 1)
                tally(future, match)
            else:
                running[future] = match
        for future in as_completed(running):
            tally(future, running[future])
    bar.close()
    return summary


def _next_batch(queue: list[int], trials: list[TrialSpec], batch: int) -> list[int]:
    """The queue's next trials that run as one batch (taken off the queue): up to ``batch`` of
    them, of the first one's codec and preset."""
    group = _group(trials[queue[0]])
    indices = [queue.pop(0)]
    while queue and len(indices) < batch and _group(trials[queue[0]]) == group:
        indices.append(queue.pop(0))
    return indices


def _tally(summary: WorkSummary, seconds: dict, out: Path, spec: TrialSpec, result) -> None:
    """Count one trial's result: its seconds, or its error (recorded, and retried next run)."""
    if isinstance(result, str):
        (out / FAILED_DIR / f"{spec.key}.txt").write_text(result)
        error = result.strip().splitlines()[-1]
        summary.failed.append(f"{spec.label()}: {error}")
        tqdm.write(f"failed: {summary.failed[-1]}")
        return
    summary.finished += 1
    group = _group(spec)
    seconds[group] = max(seconds.get(group, 0.0), result)


class _InProcess:
    """One trial after another in this process: ``--concurrent 1`` starts no pool."""

    def submit(self, function, *args) -> Future:
        import torch

        threads, future = torch.get_num_threads(), Future()
        try:
            future.set_result(function(*args))
        except Exception as error:  # reported by the caller, as a worker's would be
            future.set_exception(error)
        finally:
            torch.set_num_threads(threads)  # the trial's --threads, not the caller's
        return future

    def __enter__(self) -> "_InProcess":
        return self

    def __exit__(self, *exc) -> None:
        return None


def _executor(concurrent: int):
    if concurrent == 1:
        return _InProcess()
    # CUDA cannot be used in a forked child; spawn also gives each worker a clean torch.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=concurrent, mp_context=context)


def _starts_in_time(
    spec: TrialSpec,
    count: int,
    seconds: dict[str, float],
    deadline: float | None,
    clock=time.monotonic,
) -> bool:
    """Whether ``count`` trials of ``spec``'s kind can finish before the deadline (by
    ``clock``), judged by the longest trial of its codec and preset seen so far (else the
    longest of any; a batched trial's is its share of its batch); with none seen yet, they
    start."""
    if deadline is None:
        return True
    estimate = seconds.get(_group(spec), max(seconds.values(), default=0.0))
    return clock() + count * estimate <= deadline


def pack(out: Path) -> list[Path]:
    """The finished trials of ``out`` as tar archives of at most PACK_LIMIT bytes each
    (``OUT/pack-0.tar``, ...), for machines that send back a few files of limited size; the
    failed fits' traces (their last MAX_TRACE_BYTES) travel with them, to be named at import."""
    out = Path(out)
    if not (out / TRIALS_DIR).is_dir():
        return []
    for old in out.glob(f"{PACK_PREFIX}*.tar"):
        old.unlink()
    items: list[list[tuple[str, bytes]]] = []  # each kept whole in one archive
    finished = [f for f in sorted((out / TRIALS_DIR).iterdir()) if (f / RESULT_FILE).is_file()]
    for folder in finished:
        files = (folder / RESULT_FILE, folder / BITSTREAM_NAME)
        items.append([(f"{TRIALS_DIR}/{folder.name}/{f.name}", f.read_bytes()) for f in files])
    finished_keys = {folder.name for folder in finished}
    for trace in sorted(out.glob(f"{FAILED_DIR}/*.txt")):
        if trace.stem not in finished_keys:  # a trace left from before a rerun fitted it
            items.append([(f"{FAILED_DIR}/{trace.name}", trace.read_bytes()[-MAX_TRACE_BYTES:])])
    groups: list[list[tuple[str, bytes]]] = [[]]
    size = 0
    for item in items:
        # Tar: a 512-byte header per file, data in 512-byte blocks, 10 KiB of closing blocks.
        needed = sum(512 + -(-len(data) // 512) * 512 for _, data in item)
        if needed + 10240 > PACK_LIMIT:
            raise OSError(f"{out / item[0][0]}: {needed} bytes do not fit in one archive")
        if size + needed + 10240 > PACK_LIMIT:
            groups.append([])
            size = 0
        groups[-1] += item
        size += needed
    packs = []
    for number, files in enumerate(g for g in groups if g):
        packs.append(out / f"{PACK_PREFIX}{number}.tar")
        with tarfile.open(packs[-1], "w", format=tarfile.USTAR_FORMAT) as archive:
            for name, data in files:
                member = tarfile.TarInfo(name)
                member.size, member.mtime, member.mode = len(data), int(time.time()), 0o644
                archive.addfile(member, io.BytesIO(data))
    return packs
