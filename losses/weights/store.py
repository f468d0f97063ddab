"""The converted backbones on disk: one verified file per part, in the project's cache.

A part is read with ``torch.load(weights_only=True)`` (tensors only, no code) and its tensors are
hashed against the digest pinned in ``sources``: a file that differs by one bit is refused.
"""

import hashlib
import json
import os
from pathlib import Path

import torch

from losses.weights.sources import ARCHIVE, CHECKPOINTS, NETWORK_PARTS, PARTS, Part

WEIGHTS_ENV = "INR_STUDY_WEIGHTS"
FETCH_COMMAND = "inr-study fetch weights"
MANIFEST = "manifest.json"


class WeightsError(RuntimeError):
    """A part is missing or is not the pinned one."""


def weights_dir() -> Path:
    """Where the converted parts live: $INR_STUDY_WEIGHTS, else ~/.cache/inr-study/weights."""
    return Path(os.environ.get(WEIGHTS_ENV) or Path.home() / ".cache" / "inr-study" / "weights")


def content_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of names, shapes and float32 bytes, in name order: the tensors, not the file."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def part_path(part: Part, directory: Path | None = None) -> Path:
    return (directory or weights_dir()) / part.filename


def write_part(part: Part, tensors: dict[str, torch.Tensor], directory: Path) -> Path:
    found = content_digest(tensors)
    if found != part.content_sha256:
        raise WeightsError(
            f"converted {part.name} hashes to {found}, not the pinned {part.content_sha256}"
        )
    path = part_path(part, directory)
    partial = path.with_suffix(".partial")
    torch.save(tensors, partial)
    os.replace(partial, path)  # readers never see half a file
    return path


def read_part(part: Part, directory: Path | None = None) -> dict[str, torch.Tensor]:
    """The part's tensors, verified; WeightsError naming the file and the fix otherwise."""
    path = part_path(part, directory)
    if not path.is_file():
        raise WeightsError(f"{path} is missing; `{FETCH_COMMAND}` (or `make setup`) fetches it")
    try:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = f"{path} is not a readable tensor file ({error}); {_refetch()}"
        raise WeightsError(reason) from None
    if not (
        isinstance(tensors, dict)
        and all(isinstance(t, torch.Tensor) for t in tensors.values())
        and content_digest(tensors) == part.content_sha256
    ):
        raise WeightsError(f"{path} is not the pinned {part.name} weights; {_refetch()}")
    return tensors


def _refetch() -> str:
    return f"delete it and run `{FETCH_COMMAND}`"


def network_parts(network: str) -> tuple[Part, ...]:
    return tuple(PARTS[name] for name in NETWORK_PARTS[network])


def missing(network: str, directory: Path | None = None) -> list[Path]:
    """The part files ``network`` needs that are not there (their content is checked on read)."""
    return [path for p in network_parts(network) if not (path := part_path(p, directory)).is_file()]


def read_network(network: str, directory: Path | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of the parts ``network`` is built from, verified."""
    tensors: dict[str, torch.Tensor] = {}
    for part in network_parts(network):
        tensors |= read_part(part, directory)
    return tensors


def write_manifest(directory: Path, parts: list[Part]) -> Path:
    """What the folder holds and where it came from, for people: the loader trusts only the pins."""
    manifest = {
        "source": {"requirement": ARCHIVE.requirement, "sha256": ARCHIVE.sha256},
        "checkpoints": {
            name: {"member": c.member, "sha256": c.sha256} for name, c in CHECKPOINTS.items()
        },
        "parts": {
            p.filename: {
                "checkpoint": p.checkpoint,
                "torchvision_features": list(p.conv_indices),
                "lpips_lin": p.with_lin,
                "content_sha256": p.content_sha256,
                "file_sha256": file_sha256(part_path(p, directory)),
            }
            for p in dict.fromkeys(parts)
        },
        "networks": {
            name: list(needs)
            for name, needs in NETWORK_PARTS.items()
            if all(PARTS[n] in parts for n in needs)
        },
    }
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
