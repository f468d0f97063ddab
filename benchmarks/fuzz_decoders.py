"""Fuzz the INR decoders with damaged and hostile files, and count how each decode ends.

For each codec (COOL-CHIC v1 and v2, NIF) one small valid file (debug preset, a 64x64 Kodak crop)
is damaged --cases ways, each drawn at random from these kinds:

- truncated, bit-flipped, random bytes: the container's magic or CRC-32 should catch them;
- relabelled: another codec's id, CRC recomputed;
- header field: one parsed header field set to an extreme value, CRC recomputed;
- header bytes: header bytes changed, inserted or removed, or moved to or from the payload, CRC
  recomputed;
- payload: emptied, cut, extended, bit-flipped or replaced; for NIF also re-compressed with too
  few or too many weights, or as a stream inflating to 1 GiB; CRC recomputed.

Each case is decoded in a worker process (--jobs of them, one torch thread each; a worker that dies
is replaced) under two limits. Memory: an address-space limit (RLIMIT_AS) of --memory-gib above
the worker's size once torch is loaded and a decode has run, since torch alone maps about 3 GB of
address space. Time: --timeout seconds of CPU time (RLIMIT_CPU), so that another user's load does
not turn a slow decode into a hang, and 6x that in wall time. Outcomes: clear error (CodecError),
decoded, traceback (any other exception), hang (a time limit), memory (MemoryError or a failed
allocation), crash (the worker died some other way). Prints counts per codec and per kind of
damage, the slowest case and the largest growth of resident memory in one case, and exits 1 if
any case ended in a traceback, a hang, memory or a crash.

    nice -n 10 .venv/bin/python benchmarks/fuzz_decoders.py --cases 1000
"""

import argparse
import collections
import dataclasses
import math
import multiprocessing
import multiprocessing.connection
import os
import random
import resource
import signal
import struct
import sys
import time
from pathlib import Path

from images import add_image_arguments, image_path

CODECS = ("coolchic-v1", "coolchic-v2", "c3", "nif")
OUTCOMES = ("clear error", "decoded", "traceback", "hang", "memory", "crash")
FAILURES = {"traceback", "hang", "memory", "crash"}
KINDS = {  # kind -> weight in the mix
    "truncated": 1,
    "bit flips": 1,
    "random bytes": 1,
    "relabelled": 1,
    "header field": 4,
    "header bytes": 3,
    "payload": 3,
}


# --- the worker: decodes one case at a time under the limits ---------------------------------


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak_rss() -> bool:
    try:  # Linux: writing 5 resets VmHWM, the peak resident size
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def _worker(conn, seeds: list[bytes], memory_bytes: int, cpu_seconds: int) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from inr_models import CodecError, create_codec
    from inr_models.container import codec_of

    torch.set_num_threads(1)
    for data in seeds:  # map every library and buffer a decode needs before the limit is set
        create_codec(codec_of(data)).decode(data)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_status_bytes("VmSize") + memory_bytes, hard))
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    conn.send("ready")
    while (message := conn.recv()) is not None:
        index, data = message
        usage = resource.getrusage(resource.RUSAGE_SELF)
        resource.setrlimit(
            resource.RLIMIT_CPU,
            (math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds, cpu_hard),
        )
        peak_known, resident = _reset_peak_rss(), _status_bytes("VmRSS")
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            create_codec(codec_of(data)).decode(data)
            outcome, detail = "decoded", ""
        except CodecError as error:
            outcome, detail = "clear error", str(error)
        except MemoryError as error:
            outcome, detail = "memory", f"{type(error).__name__}: {error}"
        except Exception as error:
            allocation = "allocate" in str(error)
            outcome = "memory" if allocation else "traceback"
            frame = error.__traceback__
            while frame.tb_next is not None:
                frame = frame.tb_next
            where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}"
            detail = f"{type(error).__name__}: {error} ({where})"
        peak = _status_bytes("VmHWM") - resident if peak_known else None
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        conn.send((index, outcome, detail[:400], wall, cpu, peak))


@dataclasses.dataclass
class Worker:
    process: multiprocessing.Process
    conn: multiprocessing.connection.Connection
    ready: bool = False
    case: int | None = None
    started: float = 0.0


def _start_worker(context, seeds: list[bytes], memory_bytes: int, cpu_seconds: int) -> Worker:
    parent, child = context.Pipe()
    process = context.Process(
        target=_worker, args=(child, seeds, memory_bytes, cpu_seconds), daemon=True
    )
    process.start()
    child.close()
    return Worker(process, parent)


def run_cases(cases: list[bytes], seeds: list[bytes], args) -> list[tuple]:
    """(outcome, detail, wall s, cpu s, peak bytes or None) of each case, in order."""
    context = multiprocessing.get_context("spawn")
    memory_bytes, wall_limit = int(args.memory_gib * 2**30), 6 * args.timeout

    def start() -> Worker:
        return _start_worker(context, seeds, memory_bytes, args.timeout)

    workers = [start() for _ in range(args.jobs)]
    results: list[tuple | None] = [None] * len(cases)
    pending = collections.deque(range(len(cases)))
    done = reported = 0
    while done < len(cases):
        for worker in workers:
            if worker.ready and worker.case is None and pending:
                worker.case, worker.started = pending.popleft(), time.perf_counter()
                worker.conn.send((worker.case, cases[worker.case]))
        waitables = [w.conn for w in workers] + [w.process.sentinel for w in workers]
        multiprocessing.connection.wait(waitables, timeout=0.5)
        for i, worker in enumerate(workers):
            ended = None
            if worker.conn.poll():
                try:
                    message = worker.conn.recv()
                except EOFError:
                    message = None
                if message == "ready":
                    worker.ready = True
                elif message is not None:
                    index, *result = message
                    results[index], worker.case, done = tuple(result), None, done + 1
            if worker.case is not None and not worker.process.is_alive():
                # Killed by RLIMIT_CPU, by the kernel's out-of-memory killer, or otherwise.
                code = worker.process.exitcode
                outcome = {-signal.SIGXCPU: "hang", -signal.SIGKILL: "memory"}.get(code, "crash")
                name = signal.Signals(-code).name if code and code < 0 else f"exit code {code}"
                ended = (outcome, f"worker died: {name}")
            elif worker.case is not None and time.perf_counter() - worker.started > wall_limit:
                worker.process.kill()
                ended = ("hang", "over the wall time limit")
            elif not worker.process.is_alive():
                raise RuntimeError(
                    f"a worker failed to start (exit code {worker.process.exitcode})"
                )
            if ended:
                wall = time.perf_counter() - worker.started
                results[worker.case] = (*ended, wall, None, None)
                done += 1
                worker.process.join()
                workers[i] = start()
        if done * 10 // len(cases) > reported:
            reported = done * 10 // len(cases)
            print(f"{done}/{len(cases)} cases", file=sys.stderr, flush=True)
    for worker in workers:
        if worker.ready and worker.case is None:
            worker.conn.send(None)
        else:
            worker.process.kill()
        worker.process.join()
    return results


# --- the cases -------------------------------------------------------------------------------


def _bomb(size: int) -> bytes:
    """A brotli stream of ``size`` zero bytes, built without holding them."""
    import brotli

    compressor, chunk = brotli.Compressor(quality=1), bytes(1 << 24)
    parts = [compressor.process(chunk) for _ in range(size // len(chunk))]
    return b"".join(parts) + compressor.finish()


class Mutator:
    """Damaged copies of one codec's file; ``bomb`` is a brotli stream inflating to 1 GiB."""

    def __init__(self, name: str, files: dict[str, bytes], bomb: bytes, rng: random.Random):
        from inr_models import get_codec_class
        from inr_models.container import unpack

        self.name, self.data, self.files, self.bomb, self.rng = name, files[name], files, bomb, rng
        self.codec = get_codec_class(name)
        self.header, self.payload = unpack(self.data, self.codec)

    def case(self, kind: str) -> bytes:
        """A damaged copy of the file; drawn again when the damage happens to change nothing."""
        while (data := getattr(self, "_" + kind.replace(" ", "_"))()) == self.data:
            pass
        return data

    def pack(self, header: bytes, payload: bytes, codec=None) -> bytes:
        from inr_models.container import pack

        return pack(codec or self.codec, header, payload)

    def _truncated(self) -> bytes:
        return self.data[: self.rng.randrange(len(self.data))]

    def _bit_flips(self) -> bytes:
        flipped = bytearray(self.data)
        for _ in range(self.rng.randint(1, 8)):
            flipped[self.rng.randrange(len(flipped))] ^= 1 << self.rng.randrange(8)
        return bytes(flipped)

    def _random_bytes(self) -> bytes:
        tail = self.rng.randbytes(self.rng.choice([0, 1, 7, 64, 1000, len(self.data)]))
        return self.rng.choice([b"", self.data[:4], self.data[:6]]) + tail

    def _relabelled(self) -> bytes:
        """Another codec's id or an unknown one, and possibly another format version."""
        from types import SimpleNamespace

        label = SimpleNamespace(
            file_id=self.rng.choice([i for i in (1, 2, 3, 0, 4, 255) if i != self.codec.file_id]),
            format_version=self.rng.choice([self.codec.format_version, 0, 1, 2, 3, 255]),
        )
        return self.pack(self.header, self.payload, label)

    def _header_bytes(self) -> bytes:
        header, payload = bytearray(self.header), self.payload
        action = self.rng.choice(["set", "flip", "insert", "delete", "move"])
        for _ in range(self.rng.randint(1, 3)):
            at = self.rng.randrange(len(header) + 1)
            if action == "set" and at < len(header):
                header[at] = self.rng.choice([0, 0xFF, 0x80, 0x7F, self.rng.randrange(256)])
            elif action == "flip" and at < len(header):
                header[at] ^= 1 << self.rng.randrange(8)
            elif action == "insert":
                header[at:at] = self.rng.randbytes(1)
            elif action == "delete" and at < len(header):
                del header[at]
        if action == "move":  # shift the boundary between header and payload
            k = self.rng.randint(1, 8)
            if self.rng.random() < 0.5:
                header, payload = header + payload[:k], payload[k:]
            else:
                header, payload = header[:-k], bytes(header[-k:]) + payload
        return self.pack(bytes(header), payload)

    def _payload(self) -> bytes:
        payload, rng = self.payload, self.rng
        choices = ["empty", "cut", "extend", "flip", "replace", "double", "foreign"]
        if self.name == "nif":
            choices += ["weights", "weights", "bomb"]
        action = rng.choice(choices)
        if action == "empty":
            payload = b""
        elif action == "cut":
            payload = payload[: rng.randrange(len(payload))]
        elif action == "extend":
            payload += rng.choice([bytes, rng.randbytes])(rng.choice([1, 4, 8, 12, 100]))
        elif action == "flip":
            flipped = bytearray(payload)
            for _ in range(rng.randint(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            payload = bytes(flipped)
        elif action == "replace":
            payload = rng.randbytes(rng.choice([len(payload), rng.randrange(1, 4096)]))
        elif action == "double":
            payload += payload
        elif action == "foreign":
            other = rng.choice([n for n in self.files if n != self.name])
            payload = self.files[other][-rng.randrange(8, 4000) : -4]
        elif action == "weights":
            import brotli

            weights = bytearray(brotli.decompress(payload))
            change = rng.choice(["fewer", "more", "values"])
            if change == "fewer":
                del weights[-rng.randint(1, 1000) :]
            elif change == "more":
                weights += rng.randbytes(rng.randint(1, 1000))
            else:
                for _ in range(rng.randint(1, 50)):
                    weights[rng.randrange(len(weights))] = rng.randrange(256)
            payload = brotli.compress(bytes(weights), quality=rng.choice([1, 11]))
        else:
            payload = self.bomb
        return self.pack(self.header, payload)

    def _header_field(self) -> bytes:
        if self.name == "nif":
            return self.pack(self._nif_field(), self.payload)
        return self.pack(self._coolchic_field(), self.payload)

    # Values that probe limits: zero, small, field maximum, random.
    def _u8(self) -> int:
        return self.rng.choice([0, 1, 2, 3, 16, 255, self.rng.randrange(256)])

    def _u16(self) -> int:
        return self.rng.choice([0, 1, 2, 64, 4096, 8192, 65535, self.rng.randrange(65536)])

    def _varint(self) -> int:
        return self.rng.choice(
            [0, 1, 2, 100, 32767, 32768, 65535, 65536, 2**31, 2**62, 2**64 - 1,
             self.rng.randrange(2**self.rng.randrange(1, 64))]
        )  # fmt: skip

    def _f32(self) -> float:
        value = self.rng.choice(
            [0.0, -1.0, 1e-30, 1e-3, 1.0, 1e4, 3e38, math.nan, math.inf, -math.inf,
             self.rng.uniform(-1e6, 1e6)]
        )  # fmt: skip
        return struct.unpack("<f", struct.pack("<f", value))[0]

    def _coolchic_field(self) -> bytes:
        from inr_models import get_codec_class
        from inr_models.coolchic.bitstream import GroupHeader, Header
        from inr_models.coolchic.layers import SynthesisLayer

        header, rng = (
            Header.read(self.header, get_codec_class(self.name).architecture, self.name),
            self.rng,
        )
        field = rng.choice(
            ["height", "width", "size", "n_grids", "arm_rowcol", "arm_fraction_bits",
             "arm_hidden", "synthesis", "learned_upsampling", "group", "group", "group",
             "latent_bounds", "latent_bounds"]
        )  # fmt: skip
        if field in ("height", "width"):
            changes = {field: self._u16()}
        elif field == "size":
            changes = {"height": self._u16(), "width": self._u16()}
        elif field in ("n_grids", "arm_rowcol", "arm_fraction_bits"):
            changes = {field: self._u8()}
        elif field == "arm_hidden":
            changes = {field: tuple(self._u16() for _ in range(rng.choice([0, 1, 2, 3, 255])))}
        elif field == "synthesis":
            layers = [
                SynthesisLayer(
                    out_channels=self._u16(),
                    kernel_size=self._u8(),
                    residual=rng.random() < 0.5,
                    relu=rng.random() < 0.5,
                )
                for _ in range(rng.choice([0, 1, 3, 4, 255]))
            ]
            changes = {field: tuple(layers)}
        elif field == "learned_upsampling":
            modules = dict(header.modules)
            if header.learned_upsampling:
                del modules["upsampling"]
            else:
                modules["upsampling"] = (GroupHeader(exponent=8, bound=50, scale=10.0), None)
            changes = {field: not header.learned_upsampling, "modules": modules}
        elif field == "group":
            module = rng.choice(list(header.modules))
            groups = list(header.modules[module])
            which = rng.choice([i for i, g in enumerate(groups) if g is not None])
            part = rng.choice(["exponent", "bound", "scale"])
            value = {"exponent": self._u8, "bound": self._varint, "scale": self._f32}[part]()
            groups[which] = dataclasses.replace(groups[which], **{part: value})
            changes = {"modules": {**header.modules, module: tuple(groups)}}
        else:
            bounds = list(header.latent_bounds)
            for _ in range(rng.randint(1, len(bounds))):
                bounds[rng.randrange(len(bounds))] = self._varint()
            changes = {field: tuple(bounds)}
        return dataclasses.replace(header, **changes).write()

    def _nif_field(self) -> bytes:
        import numpy as np

        from inr_models.nif.bitstream import Header
        from inr_models.nif.presets import WIDTHS

        header, rng = Header.read(self.header), self.rng
        field = rng.choice(
            ["height", "width", "size", "size", "frequencies", "modulator_frequencies", "hidden",
             "modulator_hidden", "ladder", "bounds", "bounds"]
        )  # fmt: skip
        if field in ("height", "width"):
            return dataclasses.replace(header, **{field: self._u16()}).write()
        if field == "size":
            return dataclasses.replace(header, height=self._u16(), width=self._u16()).write()
        if field in ("frequencies", "modulator_frequencies"):
            widths = dataclasses.replace(header.widths, **{field: self._u8()})
        elif field in ("hidden", "modulator_hidden"):
            sizes = tuple(self._u16() for _ in range(rng.choice([0, 1, 2, 3, 4, 5, 255])))
            widths = dataclasses.replace(header.widths, **{field: sizes})
        elif field == "ladder":
            widths = rng.choice(list(WIDTHS.values()))
        else:
            bounds = list(header.bounds)
            if rng.random() < 0.3:
                bounds = bounds[: rng.randrange(len(bounds))] + [1.0] * rng.randrange(3)
            for _ in range(rng.randint(1, 3)):
                if bounds:
                    value = rng.choice([math.nan, math.inf, -1.0, 0.0, 65504.0, 1e-7])
                    bounds[rng.randrange(len(bounds))] = value
            with np.errstate(over="ignore"):
                return dataclasses.replace(header, bounds=tuple(bounds)).write()
        return dataclasses.replace(header, widths=widths).write()


# --- main ------------------------------------------------------------------------------------


def seed_files(image_path: Path) -> dict[str, bytes]:
    from inr_models import create_codec
    from study.data.datasets import crop
    from study.data.imageio import load_rgb

    image = crop(load_rgb(image_path), 64)
    return {name: create_codec(name, preset="debug", seed=0).encode(image).data for name in CODECS}


def table(rows: dict[str, collections.Counter], title: str) -> str:
    width = max(len(title), *(len(r) for r in rows))
    lines = [f"{title:<{width}}  {'cases':>6}" + "".join(f"  {o:>11}" for o in OUTCOMES)]
    for row, counts in rows.items():
        cells = "".join(f"  {counts[o]:>11}" for o in OUTCOMES)
        lines.append(f"{row:<{width}}  {sum(counts.values()):>6}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per codec (default 1000)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    # Above the slowest decode a work cap lets through (NIF's, about 14 s on one core): a case
    # past it is a decoder the caps do not bound.
    parser.add_argument("--timeout", type=int, default=30, help="CPU seconds per case")
    parser.add_argument("--memory-gib", type=float, default=1.5, help="memory per case, GiB")
    parser.add_argument("--seed", type=int, default=0)
    add_image_arguments(parser)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    files, bomb = seed_files(image_path(args)), _bomb(2**30)
    rng = random.Random(args.seed)
    cases, labels = [], []
    for name in files:
        mutator = Mutator(name, files, bomb, rng)
        for kind in rng.choices(list(KINDS), weights=list(KINDS.values()), k=args.cases):
            cases.append(mutator.case(kind))
            labels.append((name, kind))
    sizes = ", ".join(f"{name} {len(data)} B" for name, data in files.items())
    print(f"seed files: {sizes}; {len(cases)} cases, {args.jobs} workers, limits "
          f"{args.timeout} s CPU and {args.memory_gib:g} GiB per case")  # fmt: skip
    results = run_cases(cases, list(files.values()), args)

    by_codec = {name: collections.Counter() for name in CODECS}
    by_kind = {kind: collections.Counter() for kind in KINDS}
    for (name, kind), (outcome, *_) in zip(labels, results, strict=True):
        by_codec[name][outcome] += 1
        by_kind[kind][outcome] += 1
    by_codec["all"] = sum(by_codec.values(), collections.Counter())
    print(table(by_codec, "codec"))
    print()
    print(table(by_kind, "damage"))
    print()
    slowest = max(range(len(results)), key=lambda i: results[i][2])
    peaks = [(r[4], i) for i, r in enumerate(results) if r[4] is not None]
    wall, cpu = results[slowest][2:4]
    cpu_text = "" if cpu is None else f", {cpu:.2f} s CPU"
    print(f"slowest case: {wall:.2f} s wall{cpu_text} ({labels[slowest][0]}, "
          f"{labels[slowest][1]}: {results[slowest][0]}: {results[slowest][1][:120]})")  # fmt: skip
    if peaks:
        peak, i = max(peaks)
        print(f"largest resident-memory growth in one case: {peak / 2**20:.0f} MiB "
              f"({labels[i][0]}, {labels[i][1]}: {results[i][0]})")  # fmt: skip
    failures = [(labels[i], r) for i, r in enumerate(results) if r[0] in FAILURES]
    for (name, kind), (outcome, detail, *_) in failures[:20]:
        print(f"  {outcome}: {name}, {kind}: {detail}")
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
