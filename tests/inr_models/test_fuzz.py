"""Damaged and hostile files: every decoder answers one CodecError naming the problem, quickly.

One small file per codec; each case damages it one way: truncation, bit flips, random bytes (the
CRC-32 catches these), or, with the CRC-32 recomputed so that the codec's own checks must catch
them, another codec's id, one header field set to an extreme value, or a changed payload.
"""

import dataclasses
import random
import re
import time

import brotli
import numpy as np
import pytest

from inr_models import CodecError, create_codec, get_codec_class
from inr_models.container import codec_of, pack, unpack
from inr_models.coolchic.bitstream import GroupHeader
from inr_models.coolchic.bitstream import Header as CoolChicHeader
from inr_models.coolchic.layers import SynthesisLayer
from inr_models.limits import MAX_PIXELS_ENV
from inr_models.nif.bitstream import Header as NifHeader

CODECS = ["coolchic-v1", "coolchic-v2", "nif", "c3"]


@pytest.fixture(scope="module")
def files(crop64) -> dict[str, bytes]:
    return {name: create_codec(name, preset="debug", seed=0).encode(crop64).data for name in CODECS}


def parts(name: str, data: bytes) -> tuple[type, bytes, bytes]:
    codec = get_codec_class(name)
    return (codec, *unpack(data, codec))


def decode(data: bytes):
    """Decode with the codec the file's id names, as the decode command does."""
    return create_codec(codec_of(data)).decode(data)


def assert_all_refused(cases: dict[str, bytes]) -> None:
    wrong, start = {}, time.perf_counter()
    for label, data in cases.items():
        try:
            decode(data)
            wrong[label] = "decoded without complaint"
        except CodecError as error:
            if not str(error):
                wrong[label] = "a CodecError without a message"
        except Exception as error:  # every other outcome is reported, all cases together
            wrong[label] = f"{type(error).__name__}: {error}"
    assert not wrong, wrong
    assert time.perf_counter() - start < 5, "refusing these files took seconds"


def damaged(data: bytes, seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    cases = {f"first {n} bytes": data[:n] for n in (0, 3, 5, 9, len(data) // 2, len(data) - 1)}
    for position in (4, 6, 9, len(data) // 2, len(data) - 5, len(data) - 1):
        flipped = bytearray(data)
        flipped[position] ^= 1 << rng.randrange(8)
        cases[f"bit flip at {position}"] = bytes(flipped)
    for length in (1, 12, 100, len(data)):
        cases[f"{length} random bytes"] = rng.randbytes(length)
        cases[f"magic + {length} random bytes"] = data[:6] + rng.randbytes(length)
    return cases


@pytest.mark.parametrize("name", CODECS)
def test_truncated_flipped_and_random_files_are_refused(files, name):
    assert_all_refused(damaged(files[name], seed=CODECS.index(name)))


@pytest.mark.parametrize(
    ("source", "label_as", "message"),
    [
        (
            "coolchic-v1",
            "coolchic-v2",
            r"^corrupted header: not a coolchic-v2 architecture: ARM context rows/cols 2 "
            r"\(coolchic-v2: 3\);.* learned upsampling no \(coolchic-v2: yes\)$",
        ),
        (
            "coolchic-v2",
            "coolchic-v1",
            r"^corrupted header: not a coolchic-v1 architecture: ARM context rows/cols 3 ",
        ),
        ("coolchic-v1", "nif", "^corrupted header: "),
        ("nif", "coolchic-v2", "^corrupted header: "),
        (
            "c3",
            "coolchic-v2",
            r"^corrupted header: not a coolchic-v2 architecture: .*ARM hidden widths \[18, 18\] "
            r"\(coolchic-v2: \[24, 24\]\); synthesis layers \[18 ch 1x1 gelu, ",
        ),
        ("coolchic-v1", "c3", r"^corrupted header: not a c3 architecture: "),
    ],
)
def test_a_file_relabelled_as_another_codec_is_refused(files, source, label_as, message):
    _, header, payload = parts(source, files[source])
    with pytest.raises(CodecError, match=message):
        decode(pack(get_codec_class(label_as), header, payload))


def coolchic_header_cases(header: CoolChicHeader) -> dict[str, CoolChicHeader]:
    def replace(**fields) -> CoolChicHeader:
        return dataclasses.replace(header, **fields)

    huge_layer = SynthesisLayer(out_channels=65535, kernel_size=255, residual=True, relu=True)
    cases = {
        "height 0": replace(height=0),
        "width 0": replace(width=0),
        "height 65535": replace(height=65535),
        "width 65535": replace(width=65535),
        "size 8192x8192": replace(height=8192, width=8192),
        "size 65535x65535": replace(height=65535, width=65535),
        "size 1x1": replace(height=1, width=1),
        "0 grids": replace(n_grids=0),
        "255 grids": replace(n_grids=255),
        "ARM context 0": replace(arm_rowcol=0),
        "ARM context 255": replace(arm_rowcol=255),
        "ARM bits 255": replace(arm_fraction_bits=255),
        "no ARM layers": replace(arm_hidden=()),
        "255 ARM layers of 65535": replace(arm_hidden=(65535,) * 255),
        "no synthesis": replace(synthesis=()),
        "huge synthesis layer": replace(synthesis=(huge_layer,) * 3),
        "all latent bounds 0": replace(latent_bounds=(0,) * len(header.latent_bounds)),
        "finest latent bound 2^62": replace(latent_bounds=(2**62, *header.latent_bounds[1:])),
        "finest latent bound 32768": replace(latent_bounds=(32768, *header.latent_bounds[1:])),
        "finest latent bound 32767": replace(latent_bounds=(32767, *header.latent_bounds[1:])),
        "coarsest latent bound 32767": replace(latent_bounds=(*header.latent_bounds[:-1], 32767)),
    }
    for module, groups in header.modules.items():
        for kind, group in zip(("weights", "biases"), groups, strict=True):
            if group is None:  # v2's upsampling has no biases
                continue
            for label, change in {
                "exponent 255": {"exponent": 255},
                "exponent +1": {"exponent": 17 if module != "arm" else 8},
                "bound 0": {"bound": 0},
                "bound 65536": {"bound": 65536},
                "bound 2^62": {"bound": 2**62},
                "scale NaN": {"scale": float("nan")},
                "scale inf": {"scale": float("inf")},
                "scale 0": {"scale": 0.0},
                "scale -1": {"scale": -1.0},
                "scale 3e38": {"scale": 3e38},
            }.items():
                modules = dict(header.modules)
                changed = dataclasses.replace(group, **change)
                modules[module] = (
                    (changed, groups[1]) if kind == "weights" else (groups[0], changed)
                )
                cases[f"{module} {kind} {label}"] = replace(modules=modules)
    return cases


def test_learned_upsampling_flag_must_match_the_version(files):
    for name in ("coolchic-v1", "coolchic-v2"):
        codec, header_bytes, payload = parts(name, files[name])
        header = CoolChicHeader.read(header_bytes, get_codec_class(name).architecture, name)
        modules = dict(header.modules)
        if header.learned_upsampling:
            del modules["upsampling"]
        else:
            modules["upsampling"] = (GroupHeader(exponent=8, bound=10, scale=2.0), None)
        flipped = dataclasses.replace(
            header, learned_upsampling=not header.learned_upsampling, modules=modules
        )
        with pytest.raises(CodecError, match="learned upsampling"):
            decode(pack(codec, flipped.write(), payload))


@pytest.mark.parametrize("name", ["coolchic-v1", "coolchic-v2", "c3"])
def test_coolchic_header_fields_out_of_range_are_refused(files, name):
    codec, header_bytes, payload = parts(name, files[name])
    header = CoolChicHeader.read(header_bytes, get_codec_class(name).architecture, name)
    cases = coolchic_header_cases(header)
    assert len(cases) > 50
    assert_all_refused({k: pack(codec, h.write(), payload) for k, h in cases.items()})


def nif_header_cases(header: NifHeader) -> dict[str, NifHeader]:
    def replace(**fields) -> NifHeader:
        return dataclasses.replace(header, **fields)

    def widths(**fields) -> NifHeader:
        return replace(widths=dataclasses.replace(header.widths, **fields))

    hidden, modulator = header.widths.hidden, header.widths.modulator_hidden
    return {
        "height 0": replace(height=0),
        "width 1": replace(width=1),
        "size 1x1": replace(height=1, width=1),
        # 65535 rows of 64 px is a valid (if slow) NIF file: the weights do not depend on the size.
        "height 65535 x 2048": replace(height=65535, width=2048),
        "width 65535": replace(width=65535),
        "size 4096x4096": replace(height=4096, width=4096),
        "size 65535x65535": replace(height=65535, width=65535),
        "0 frequencies": widths(frequencies=0),
        "255 frequencies": widths(frequencies=255),
        "255 modulator frequencies": widths(modulator_frequencies=255),
        "no hidden layers": widths(hidden=()),
        "255 hidden layers": widths(hidden=(16,) * 255),
        "hidden width 0": widths(hidden=(0, *hidden[1:])),
        "hidden width 65535": widths(hidden=(65535, *hidden[1:])),
        "no modulator layers": widths(modulator_hidden=()),
        "modulator width 65535": widths(modulator_hidden=(*modulator[:-1], 65535)),
        "widest ladder layers": widths(hidden=(680,) * 4, modulator_hidden=(64,) * 3),
        "bound NaN": replace(bounds=(float("nan"), *header.bounds[1:])),
        "bound inf": replace(bounds=(*header.bounds[:-1], float("inf"))),
        "bound -1": replace(bounds=(-1.0, *header.bounds[1:])),
        "one bound fewer": replace(bounds=header.bounds[:-1]),
        "one bound more": replace(bounds=(*header.bounds, 1.0)),
    }


def test_nif_header_fields_out_of_range_are_refused(files):
    codec, header_bytes, payload = parts("nif", files["nif"])
    cases = nif_header_cases(NifHeader.read(header_bytes))
    assert_all_refused({k: pack(codec, h.write(), payload) for k, h in cases.items()})


@pytest.mark.parametrize("name", CODECS)
def test_changed_payloads_are_refused(files, name):
    codec, header, payload = parts(name, files[name])
    rng = random.Random(7)
    payloads = {
        "emptied": b"",
        "halved": payload[: len(payload) // 2],
        "4 bytes short": payload[:-4],
        "4 zero bytes more": payload + bytes(4),
        "12 random bytes more": payload + rng.randbytes(12),
        "doubled": payload * 2,
        "random, same length": rng.randbytes(len(payload)),
    }
    if name == "nif":
        # Unlike range-coded data, a brotli stream with a changed bit can hold other valid weights.
        weights = brotli.decompress(payload)
        payloads |= {
            "one weight fewer": brotli.compress(weights[:-1]),
            "one weight more": brotli.compress(weights + b"\x01"),
            "16 MiB of zeros": brotli.compress(bytes(1 << 24), quality=1),
        }
    else:
        for position in (0, len(payload) // 2, len(payload) - 1):
            flipped = bytearray(payload)
            flipped[position] ^= 0x10
            payloads[f"bit flipped in byte {position}"] = bytes(flipped)
    assert_all_refused({k: pack(codec, header, p) for k, p in payloads.items()})


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("coolchic-v1", {"latent_bounds": (2**62,) * 7}, "latent grid 0 bound 4611686018427387904"),
        (
            "coolchic-v2",
            {"height": 8192, "width": 8192, "latent_bounds": (1,) * 7},
            "8192x8192 with these bounds needs [0-9,]+ Laplace probabilities, over the cap",
        ),
        ("nif", {"height": 4096, "width": 4096}, "4096x4096 at 16,768 MAC/pixel .* over the cap"),
        ("nif", {"height": 1}, "image size 64x1 outside \\[2, 65535\\]"),
    ],
)
def test_messages_name_the_field(files, name, change, message):
    codec, header_bytes, payload = parts(name, files[name])
    header = (
        NifHeader.read(header_bytes)
        if name == "nif"
        else CoolChicHeader.read(header_bytes, get_codec_class(name).architecture, name)
    )
    data = pack(codec, dataclasses.replace(header, **change).write(), payload)
    with pytest.raises(CodecError, match=f"^corrupted header: .*{message}"):
        create_codec(name).decode(data)


def test_payload_left_over_is_counted(files):
    codec, header, payload = parts("coolchic-v2", files["coolchic-v2"])
    with pytest.raises(CodecError, match=r"^payload: 12 bytes left after the last latent$"):
        create_codec("coolchic-v2").decode(pack(codec, header, payload + bytes(12)))


def test_pixel_cap_comes_from_the_environment(files, monkeypatch):
    data = files["nif"]
    monkeypatch.setenv(MAX_PIXELS_ENV, "4095")
    with pytest.raises(
        CodecError, match=f"64x64 exceeds the cap of 4095 pixels .*{MAX_PIXELS_ENV}"
    ):
        create_codec("nif").decode(data)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(CodecError, match=f"{MAX_PIXELS_ENV}='lots': expected a positive whole"):
        create_codec("nif").decode(data)
    monkeypatch.setenv(MAX_PIXELS_ENV, "4096")
    assert create_codec("nif").decode(data).shape == (64, 64, 3)


def test_decode_command_names_the_file(files, tmp_path):
    from study.commands.decode import main

    codec, header, payload = parts("coolchic-v1", files["coolchic-v1"])
    path = tmp_path / "extended.inr"
    path.write_bytes(pack(codec, header, payload + bytes(4)))
    with pytest.raises(CodecError, match=f"^{re.escape(str(path))}: payload: 4 bytes left after"):
        main([str(path), "-o", str(tmp_path / "out.png")])


@pytest.mark.parametrize(
    ("name", "rows", "columns", "loss"),
    [
        ("coolchic-v2", 1, 64, "mse"),
        # Network groups that quantise to all zeros: coded by their bound alone.
        ("coolchic-v1", 1, 64, "mse"),
        ("coolchic-v1", 1, 1, "mse"),
        ("coolchic-v1", 8, 8, "mse"),
        ("nif", 2, 2, "mse"),  # NIF's SSIM needs larger images
    ],
)
def test_the_thinnest_images_the_encoders_write_decode(crop64, name, rows, columns, loss):
    image = np.ascontiguousarray(crop64[:rows, :columns])
    result = create_codec(name, preset="debug", loss=loss).encode(image)
    np.testing.assert_array_equal(create_codec(name).decode(result.data), result.reconstruction)


def test_header_bytes_must_be_the_ones_the_encoder_writes(files):
    codec, header, payload = parts("coolchic-v2", files["coolchic-v2"])
    # v2 layout: size (4), grids, context, bits, ARM widths (1 + 2·2), synthesis (1 + 4·4),
    # learned upsampling, then the groups and the latent bounds, varints of one byte here.
    first_flags, upsampling = 4 + 3 + 5 + 1 + 3, 4 + 3 + 5 + 1 + 16
    assert header[upsampling] == 1 and header[-1] < 0x80
    forged = {
        "upsampling byte 2": header[:upsampling] + b"\x02" + header[upsampling + 1 :],
        "unused flag bits": header[:first_flags]
        + bytes([header[first_flags] | 0xF0])
        + header[first_flags + 1 :],
        "over-long varint": header[:-1] + bytes([header[-1] | 0x80, 0]),
    }
    for label, forged_header in forged.items():
        with pytest.raises(CodecError) as raised:
            decode(pack(codec, forged_header, payload))
        assert str(raised.value).startswith("corrupted header: not written as the encoder"), label
