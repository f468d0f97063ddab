"""The GPU queue: what a lent GPU machine runs next, prepared here, run there in one call, then
checked and recorded here.

    python benchmarks/gpu_queue.py prepare            # packages, wheels, run script
    (the device call it prints: bash gpu-work/run.sh, carrying gpu-work)
    python benchmarks/gpu_queue.py import FILES_AT    # check, record, then `make publish`

``prepare`` shards each entry of ``benchmarks/gpu_queue.yaml`` in order, leaving out the trials
already published (``trials.jsonl``) or recorded in the local study folder (a rate-matching
search's entry: the matches those fits do not end yet, each starting from them), until all that
travels (the working tree and ``gpu-work/``) would pass the carry limit. The machine has no Ray,
no MLflow and no registry: the run script installs the carried wheels and runs ``inr-study work``
on each package in turn, all packed on the one GPU, starting no trial it cannot finish in the
time given, and copies each package's archives to ``$OUT``. Pretrained weights travel only for
the networks the queued fits train with (a perceptual loss's, LPIPS-AlexNet among them where a
loss has an LPIPS term); for the metrics alone none travel: ``import`` measures what a result
lacks (LPIPS) from its file. ``import`` records the results in
the local study folder (first rebuilt from its published copy, so the study grows from what is
committed), and the fits that failed there in ``gpu_failures.jsonl`` (``gpu_failures.py``: a
trial that failed in two runs is left out of the next ``prepare``).
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from gpu_failures import GIVE_UP_AFTER, FailureLedger, queue_run

ROOT = Path(__file__).resolve().parents[1]
QUEUE = ROOT / "benchmarks" / "gpu_queue.yaml"
FAILURES = ROOT / "benchmarks" / "gpu_failures.jsonl"
WORK = Path("gpu-work")
STORAGE = Path("results/studies")
CARRY_LIMIT = 64 * 2**20
# What the device tool brings back from $OUT: at most this many files (environment.json, log.txt,
# then the packages' archives).
RETURNED_FILES = 8
# What `inr-study work` imports beyond the machine's own torch, numpy, Pillow, scipy, tqdm, PyYAML.
WHEELS = (
    "constriction==0.5.0",
    "brotli==1.2.1",
    "pillow-jxl-plugin==1.3.8",
    "pytorch-msssim==1.0.0",
    "lpips==0.1.4",
    "pydantic==2.14.3",
    "pydantic-core==2.50.4",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
    "typing-extensions==4.16.0",
)
# The machine's Python (environment-notes: Python 3.12 on x86_64).
PLATFORM = ["--python-version", "3.12", "--platform", "manylinux2014_x86_64"]
PLATFORM += ["--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64"]

PIP_DOWNLOAD = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
PIP_DOWNLOAD.append("--only-binary=:all:")
FETCH_WEIGHTS = [str(Path(sys.executable).parent / "inr-study"), "fetch", "weights"]

RUN_SCRIPT = """#!/usr/bin/env bash
# Written by benchmarks/gpu_queue.py prepare: the queue's packages in order, on this GPU.
# Rehearsal on a CPU: INSTALL=0 PYTHON=.venv/bin/python DEVICE=cpu OUT=DIR bash {work}/run.sh
# CONCURRENT=K BATCH=B: K processes of B fits trained together each (the GPU check's best).
set -uo pipefail
work=$(cd "{work}" && pwd)
python=${{PYTHON:-python3}}
if [[ "${{INSTALL:-1}}" == 1 ]]; then
    "$python" -m pip install --quiet --no-deps "$work"/wheels/*.whl || exit 1
fi
export PYTHONPATH="$PWD" INR_STUDY_WEIGHTS="$work/weights" INR_STUDY_GIT_COMMIT={commit}
end=$(( $(date +%s) + {seconds} ))
# The run's id names it in the record of failed fits (gpu_failures.py).
"$python" -c "import json, platform, torch, uuid; print(json.dumps({{'torch': torch.__version__, \\
'python': platform.python_version(), 'cuda': torch.version.cuda, 'run': uuid.uuid4().hex, \\
'gpu': torch.cuda.is_available() and torch.cuda.get_device_name(0)}}))" > "$OUT/environment.json"
for package in {packages}; do
    name=$(basename "$package")
    left=$(( end - $(date +%s) ))
    (( left > 60 )) || break
    # At most {returned} files come back: a package starts only while one is still free for it.
    (( $(ls "$OUT" | wc -l) < {returned} )) || break
    "$python" -m study.cli work "$work/packages/$name" -o "$work/out/$name" --pack \\
        --device "${{DEVICE:-cuda}}" --concurrent "${{CONCURRENT:-{concurrent}}}" \\
        --batch "${{BATCH:-{batch}}}" \\
        --minutes "$(( left / 60 ))" 2>&1 | tail -n 20 >> "$OUT/log.txt"
    for pack in "$work/out/$name"/pack-*.tar; do
        [[ -e "$pack" ]] && cp "$pack" "$OUT/$name-$(basename "$pack")"
    done
done
ls "$OUT"
"""


def load_queue(path: Path = QUEUE) -> list[dict]:
    entries = yaml.safe_load(path.read_text())
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and "config" in e and "published" in e for e in entries
    ):
        raise SystemExit(f"{path}: expected a list of entries with config and published")
    return entries


def tree_bytes() -> int:
    """What the device tool sends of the working tree: tracked and untracked, not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    paths = (ROOT / name.decode() for name in listed if name)
    return sum(path.stat().st_size for path in paths if path.is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class CarryBudget:
    """What may still travel: the carry limit less the tree and what is already queued. A weight
    file counts once, however many queued packages' fits train with it."""

    def __init__(self, left: int):
        self.left = left
        self.weights: set[Path] = set()

    def cost(self, package_bytes: int, weights: set[Path]) -> int:
        """A package's bytes and those of the weight files not yet queued."""
        return package_bytes + sum(p.stat().st_size for p in weights - self.weights)

    def take(self, package_bytes: int, weights: set[Path]) -> None:
        self.left -= self.cost(package_bytes, weights)
        self.weights |= weights


def weight_parts(networks: set[str]) -> set[Path]:
    """The files of these networks' weights in this machine's verified cache (fetched there
    first where missing): what carrying them costs."""
    from losses.weights.fetch import fetch
    from losses.weights.store import network_parts, part_path

    if not networks:
        return set()
    fetch(networks=tuple(sorted(networks)), log=lambda _: None)
    return {part_path(part) for name in networks for part in network_parts(name)}


def report_given_up(study: str, given_up: dict[str, tuple[int, str]], recorded: tuple[Path, ...]):
    """Name the trials of ``study`` that ``prepare`` leaves out, those not ``recorded`` since."""
    from study.engine.sharding import done_keys

    done = set().union(*(done_keys(path) for path in recorded if path.exists()))
    left = {key: failed for key, failed in given_up.items() if key not in done}
    if not left:
        return
    print(
        f"{study}: {len(left)} left out, each failed in {GIVE_UP_AFTER} or more runs there "
        "(`prepare --retry-failed` queues them again):"
    )
    for key, (runs, error) in sorted(left.items()):
        print(f"  {key}: failed in {runs} runs; last: {error}")


def prepare(args) -> int:
    from study.config import load_config
    from study.engine.package import read_package
    from study.engine.provenance import git_commit
    from study.engine.selection import parse_where
    from study.engine.sharding import package_networks, shard
    from study.errors import InputError

    work = args.work
    if work.exists():
        shutil.rmtree(work)
    (work / "packages").mkdir(parents=True)
    if not args.rehearse:
        subprocess.run(
            [*PIP_DOWNLOAD, *PLATFORM, "-d", str(work / "wheels"), *WHEELS],
            check=True,
        )
    budget = CarryBudget(CARRY_LIMIT - tree_bytes() - folder_bytes(work))
    queued: dict[str, str] = {}  # package -> the study it is for
    networks: set[str] = set()
    ledger = FailureLedger(args.failures)
    given_up: dict[str, dict] = {}  # study -> its trials left out
    for number, entry in enumerate(load_queue(args.queue)):
        config = load_config(ROOT / entry["config"], {"storage": str(args.storage)})
        recorded = (ROOT / entry["published"], args.storage / config.name)
        if config.name not in given_up:
            given_up[config.name] = {} if args.retry_failed else ledger.given_up(config.name)
            if given_up[config.name]:
                report_given_up(config.name, given_up[config.name], recorded)
        # What earlier entries of the same study queued is not queued twice. Other studies'
        # packages do not count: a trial key names no study (the crop studies share their
        # classical anchors), and each study must receive its own trials.
        earlier = [work / "packages" / n for n, study in queued.items() if study == config.name]
        done = [p for p in recorded if p.exists()] + earlier
        name = f"{number:02d}-{config.name}"
        staging = work / "staging"
        try:
            (part,) = shard(
                config,
                staging,
                where=parse_where(entry.get("where")),
                skip_done=done,
                leave_out=given_up[config.name],
            )
        except InputError as error:  # nothing left to shard, a where, image or loss it lacks
            print(f"{name}: {error}")
            continue
        package = read_package(part)
        wanted = package_networks(package)
        package_bytes = folder_bytes(part)  # and the weights it adds, fetched only if it fits
        # Only new networks' parts are fetched (verified) again: earlier packages' are counted.
        fits = package_bytes <= budget.left
        needs = weight_parts(wanted - networks) if fits and not args.rehearse else set()
        size = budget.cost(package_bytes, needs)
        if size > budget.left:
            print(f"{name}: {size / 2**20:.1f} MiB would pass the carry limit; the queue stops")
            shutil.rmtree(staging)
            break
        part.rename(work / "packages" / name)
        shutil.rmtree(staging)
        budget.take(package_bytes, needs)
        queued[name] = config.name
        networks |= wanted
        count = f"{len(package.items)} {package.unit}"
        print(f"{name}: {count} ({entry.get('where') or 'all'}), {size / 2**20:.1f} MiB")
    if not queued:
        print("nothing to queue: every entry is done, or what is left is left out (above)")
        return 1
    if not networks:  # LPIPS and the other metrics' networks: `import` measures them here
        print("weights: none carried (no queued fit trains with a pretrained network)")
    elif args.rehearse:
        print(f"weights: left out of a rehearsal ({', '.join(sorted(networks))}): fits of the "
              "losses that read them fail there")  # fmt: skip
    else:
        fetched = [*FETCH_WEIGHTS, "--cache-dir", str(work / "weights")]
        subprocess.run([*fetched, "--networks", ",".join(sorted(networks))], check=True)
    seconds = int(args.minutes * 60)
    (work / "run.sh").write_text(
        RUN_SCRIPT.format(
            work=work,
            seconds=seconds,
            concurrent=args.concurrent,
            batch=args.batch,
            commit=git_commit(),
            packages=" ".join(f'"$work/packages/{n}"' for n in queued),
            returned=RETURNED_FILES,
        )
    )
    carried = tree_bytes() + folder_bytes(work)
    print(
        f"\ncarry: {carried / 2**20:.1f} MiB of 64 (tree and {work}). The device call:\n"
        f'  run(command="bash {work}/run.sh", carry=["{work}"], '
        f"timeout_s={seconds + 180})\n"
        f"then: python benchmarks/gpu_queue.py import FILES_AT"
    )
    return 0


def import_results(args) -> int:
    from study.config import load_config
    from study.engine.archive import rebuild
    from study.engine.importer import import_results as record
    from study.engine.incoming import failed_fits
    from study.engine.reports import refresh_reports
    from study.errors import InputError
    from study.layout import TRIALS_FILE

    entries = load_queue(args.queue)
    by_entry: dict[int, list[Path]] = {}
    for pack in sorted(args.files.glob("*-pack-*.tar")):
        by_entry.setdefault(int(pack.name[:2]), []).append(pack)
    if not by_entry:
        print(f"{args.files}: no archives from the GPU queue")
        return 1
    by_study: dict[Path, tuple] = {}
    for number, packs in by_entry.items():
        entry = entries[number]
        config = load_config(ROOT / entry["config"], {"storage": str(args.storage)})
        published = ROOT / entry["published"]
        folder = args.storage / config.name
        by_study.setdefault(folder, (config, published, []))[2].extend(packs)
    stowed = {ROOT / entry["published"] for entry in entries if entry.get("stow")}
    ledger, run = FailureLedger(args.failures), None
    refused = False
    for folder, (config, published, packs) in by_study.items():
        failures = failed_fits(packs)  # no result to import; the next `prepare` queues them
        for failure in failures:
            print(f"failed there: {failure}")
        # Named only when a fit failed: without its id, naming it reads every archive.
        run = run or (queue_run(args.files) if failures else None)
        added = ledger.add(config.name, failures, run) if run else 0
        if added:
            print(
                f"  {added} failed fits added to {ledger.path} (commit it: a trial that "
                f"failed in {GIVE_UP_AFTER} runs is left out of the next `prepare`)"
            )
        try:
            if not folder.exists() and (published / TRIALS_FILE).exists():
                rebuilt = rebuild(published, args.storage)  # grow the committed study
                for name in rebuilt.differing:  # the publish after this import replaces them
                    print(f"{published}: {name} differs when written again here")
            done = record(folder, packs, config)
        except InputError as error:  # refused, or its published files unreadable here
            print(f"{folder}: {error}")
            refused = True
            continue
        refresh_reports(folder, config)
        print(f"{folder}: {done.trials} trials imported from {len(packs)} archives")
        if done.filled:
            print(f"  {done.filled} metric values measured here (LPIPS: not carried there)")
        out = published.relative_to(ROOT) if published.is_relative_to(ROOT) else published
        print(f"  commit them: make publish STUDY={folder} OUT={out}")
        if published in stowed:  # too many files for the tree a lent machine is sent
            print(f"  then keep its files in git history: inr-study stow {out}; commit again")
    return 1 if refused else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queue", type=Path, default=QUEUE)
    parser.add_argument(
        "--failures", type=Path, default=FAILURES, help="the record of fits failed there"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ready = commands.add_parser(
        "prepare", help="packages, wheels, the weights its fits train with, the run script"
    )
    ready.add_argument("--work", type=Path, default=WORK, help="folder that travels (gpu-work)")
    ready.add_argument(
        "--minutes", type=float, default=6.0, help="work time there (default 6: room to rerun)"
    )
    ready.add_argument(
        "--concurrent", type=int, default=16, help="trials at once on the GPU (default 16)"
    )
    ready.add_argument(
        "--batch",
        type=int,
        default=1,
        help="fits trained together per process (default 1: batching has not yet been measured "
        "on a GPU; the GPU check's batching.json says which pays)",
    )
    ready.add_argument("--rehearse", action="store_true", help="no wheels, no weights (CPU test)")
    ready.add_argument(
        "--retry-failed",
        action="store_true",
        help=f"queue the trials that failed in {GIVE_UP_AFTER} runs there too",
    )
    ready.add_argument("--storage", type=Path, default=STORAGE, help="where study folders live")
    back = commands.add_parser("import", help="check and record what the machine sent back")
    back.add_argument("files", type=Path, help="the folder the device tool returned")
    back.add_argument("--storage", type=Path, default=STORAGE, help="where study folders live")
    args = parser.parse_args(argv)
    return prepare(args) if args.command == "prepare" else import_results(args)


if __name__ == "__main__":
    sys.exit(main())
