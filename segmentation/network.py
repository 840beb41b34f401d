"""The residual multi-scale dual-attention U-Net of Chowdary et al. (arXiv 2111.08708).

Every building block is a small module that names the equation it implements. The Table II ablations are
switches on one network (:data:`VARIANTS`), not copies. The paper leaves several details open; each choice is
written down in ``docs/MODEL.md`` and repeated briefly in the docstrings here.

The network returns *logits*: the paper's final sigmoid is applied by the loss (numerically stable) and by the
predictor, so the trained function is the paper's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

REDUCTION_RATIO = 16
SPATIAL_KERNELS = (3, 5, 7, 9)


def reduced_channels(channels: int, ratio: int = REDUCTION_RATIO) -> int:
    """Channels after squeezing by ``ratio``; never fewer than one.

    At a base width of 16 the first level has 16 channels, so 16 / 16 = 1; narrower layers (or a ratio larger than
    the width) would give zero channels, which a convolution cannot have. One channel keeps the attention map
    defined (it degenerates to a single learned projection) instead of failing.
    """
    return max(1, channels // ratio)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualMultiScaleModule(nn.Module):
    """RMSM, Eq. 1: ``Out = In + Conv1x1([BN(Conv1x1(In)), BN(Conv3x3(In)), BN(Conv5x5(In))])``.

    Three parallel branches see 1x1, 3x3 and 5x5 neighbourhoods; their batch-normalised outputs are concatenated
    and fused by a 1x1 bottleneck convolution (no batch norm on the bottleneck, as the paper says). The outer
    ``⊕`` with ``In`` is read as a residual *addition* (the text calls it a residual connection; a concatenation
    would grow the channels at every block); when the channel count changes, ``In`` is projected by a 1x1
    convolution, as in ResNet. ReLU follows each branch and the sum.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(conv_bn_relu(in_channels, out_channels, k) for k in (1, 3, 5))
        self.fuse = nn.Conv2d(3 * out_channels, out_channels, kernel_size=1)
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multi_scale = torch.cat([branch(x) for branch in self.branches], dim=1)
        return F.relu(self.shortcut(x) + self.fuse(multi_scale))


class DoubleConv(nn.Module):
    """The plain U-Net block (two 3x3 conv + BN + ReLU): the Table II baseline in place of RMSM."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(in_channels, out_channels, 3), conv_bn_relu(out_channels, out_channels, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ChannelAttention(nn.Module):
    """``σ(MLP(GAP(x)))``: the channel attention of Eqs. 2 and 5.

    Eq. 2's prose says max pooling, its formula says global average pooling; we follow the formula (and Eq. 5,
    which agrees). The MLP is ``in → in/r → out`` with ReLU, i.e. a squeeze-excite bottleneck; ``out`` differs
    from ``in`` in DF-RAM, where the decoder feature gates the skip feature's channels.
    """

    def __init__(self, in_channels: int, out_channels: int, ratio: int = REDUCTION_RATIO) -> None:
        super().__init__()
        hidden = reduced_channels(in_channels, ratio)
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(F.adaptive_avg_pool2d(x, 1)))


class MultiKernelSpatialAttention(nn.Module):
    """``σ(Conv3x3(x) + Conv5x5(x) + Conv7x7(x) + Conv9x9(x))`` to one channel: the sum in Eqs. 3 and 6.

    (Eq. 6 prints the last kernel as 9x7; we read it as 9x9 like Eq. 3.)
    """

    def __init__(self, in_channels: int, kernels: Sequence[int] = SPATIAL_KERNELS) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(in_channels, 1, k, padding=k // 2) for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.stack([conv(x) for conv in self.convs]).sum(dim=0))


class DecoderFeatureRefinement(nn.Module):
    """DF-RAM, Eqs. 2-4: refines the encoder's skip feature ``S`` with the decoder feature ``D`` before concat.

    ``D`` is the lower-resolution output of the previous decoder stage (the bridge for the first one), taken
    before upsampling, as the text says its squeezed form "is upsampled to complement the size of SF".
    ``CHA = σ(MLP(GAP(D)))`` (Eq. 2), ``SPA = σ(Σ_k Conv_k([Conv1x1_r(S), Up(Conv1x1_r(D))]))`` (Eq. 3) and
    ``DF(S) = S ⊗ CHA ⊗ SPA`` (Eq. 4).
    """

    def __init__(self, skip_channels: int, decoder_channels: int, ratio: int = REDUCTION_RATIO) -> None:
        super().__init__()
        self.channel = ChannelAttention(decoder_channels, skip_channels, ratio)
        self.squeeze_skip = nn.Conv2d(skip_channels, reduced_channels(skip_channels, ratio), kernel_size=1)
        self.squeeze_decoder = nn.Conv2d(decoder_channels, reduced_channels(decoder_channels, ratio), kernel_size=1)
        self.spatial = MultiKernelSpatialAttention(
            reduced_channels(skip_channels, ratio) + reduced_channels(decoder_channels, ratio)
        )

    def forward(self, skip: torch.Tensor, decoder: torch.Tensor) -> torch.Tensor:
        squeezed_decoder = F.interpolate(
            self.squeeze_decoder(decoder), size=skip.shape[-2:], mode="bilinear", align_corners=False
        )
        spatial = self.spatial(torch.cat([self.squeeze_skip(skip), squeezed_decoder], dim=1))
        return skip * self.channel(decoder) * spatial


class EncoderFeatureRefinement(nn.Module):
    """EF-RAM, Eqs. 5-7: refines a decoder stage's upsampled features in channel and space.

    ``CHA = σ(MLP(GAP(S)))`` (Eq. 5), ``SPA = σ(Σ_k Conv_k(Conv1x1_r(S)))`` (Eq. 6), ``EF(S) = SPA ⊗ CHA ⊗ S``
    (Eq. 7).
    """

    def __init__(self, channels: int, ratio: int = REDUCTION_RATIO) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, channels, ratio)
        self.squeeze = nn.Conv2d(channels, reduced_channels(channels, ratio), kernel_size=1)
        self.spatial = MultiKernelSpatialAttention(reduced_channels(channels, ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.channel(x) * self.spatial(self.squeeze(x))


@dataclass(frozen=True)
class Variant:
    """One row of the paper's Table II ablation."""

    block: str  # "rmsm" or "double_conv"
    df_ram: bool
    ef_ram: bool


VARIANTS: dict[str, Variant] = {
    "unet": Variant(block="double_conv", df_ram=False, ef_ram=False),
    "rmsm": Variant(block="rmsm", df_ram=False, ef_ram=False),
    "rmsm-dfram": Variant(block="rmsm", df_ram=True, ef_ram=False),
    "rmsm-efram": Variant(block="rmsm", df_ram=False, ef_ram=True),
    "full": Variant(block="rmsm", df_ram=True, ef_ram=True),
}

ARCHITECTURE = "dual-attention-unet"


@dataclass(frozen=True)
class NetworkConfig:
    """Constructor arguments, saved beside the weights so a weights file rebuilds its own model."""

    variant: str = "full"
    base_width: int = 16
    reduction_ratio: int = REDUCTION_RATIO
    in_channels: int = 3

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.base_width < 1 or self.reduction_ratio < 1:
            raise ValueError("base_width and reduction_ratio must be positive")

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)


def _block(kind: str, in_channels: int, out_channels: int) -> nn.Module:
    return (
        ResidualMultiScaleModule(in_channels, out_channels) if kind == "rmsm" else DoubleConv(in_channels, out_channels)
    )


class EncoderStage(nn.Module):
    """A block at full resolution (its output is the skip feature) then a stride-2 3x3 convolution.

    The paper puts "a stride of 2 on the last convolutional layer" of each encoder RMSM. Striding *inside* the
    block would leave the last decoder stage without a full-resolution skip; so the block runs at full resolution
    and the stage's last convolution is the strided one that hands the halved map to the next stage.
    """

    def __init__(self, kind: str, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = _block(kind, in_channels, out_channels)
        self.down = conv_bn_relu(out_channels, out_channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.block(x)
        return skip, self.down(skip)


class DecoderStage(nn.Module):
    """Bilinear upsampling + 3x3 conv, DF-RAM on the skip, concatenation, a block, then EF-RAM (Sec. III-C)."""

    def __init__(
        self, kind: str, in_channels: int, skip_channels: int, out_channels: int, variant: Variant, ratio: int
    ) -> None:
        super().__init__()
        self.up_conv = conv_bn_relu(in_channels, out_channels, 3)
        self.refine_skip = DecoderFeatureRefinement(skip_channels, in_channels, ratio) if variant.df_ram else None
        self.block = _block(kind, skip_channels + out_channels, out_channels)
        self.refine_output = EncoderFeatureRefinement(out_channels, ratio) if variant.ef_ram else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # Upsample to the skip's exact size, so inputs not divisible by 8 work.
        up = self.up_conv(F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False))
        if self.refine_skip is not None:
            skip = self.refine_skip(skip, x)
        out = self.block(torch.cat([skip, up], dim=1))
        return self.refine_output(out) if self.refine_output is not None else out


class DualAttentionUNet(nn.Module):
    """4-level encoder / bridge / decoder network of Sec. III-C; returns one logit map at the input's size.

    Widths double per level: ``w, 2w, 4w`` in the encoder, ``8w`` in the bridge, ``4w, 2w, w`` in the decoder.
    """

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetworkConfig()
        variant = VARIANTS[self.config.variant]
        w, kind, r = self.config.base_width, variant.block, self.config.reduction_ratio
        widths = (w, 2 * w, 4 * w)
        self.encoder = nn.ModuleList(
            EncoderStage(kind, c_in, c_out)
            for c_in, c_out in zip((self.config.in_channels, *widths[:-1]), widths, strict=True)
        )
        self.bridge = _block(kind, widths[-1], 8 * w)
        decoder_in = (8 * w, *reversed(widths[1:]))
        self.decoder = nn.ModuleList(
            DecoderStage(kind, c_in, c_skip, c_skip, variant, r)
            for c_in, c_skip in zip(decoder_in, reversed(widths), strict=True)
        )
        self.head = nn.Conv2d(w, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[0]

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logit map and every stage's output: the encoder's three skips, the bridge, the decoder's three."""
        skips = []
        for stage in self.encoder:
            skip, x = stage(x)
            skips.append(skip)
        x = self.bridge(x)
        stages = [*skips, x]
        for stage, skip in zip(self.decoder, reversed(skips), strict=True):
            x = stage(x, skip)
            stages.append(x)
        return self.head(x), stages


def summarise(stages: list[torch.Tensor]) -> torch.Tensor:
    """N x (3 * channels of all stages): per stage, each channel's mean, then its maximum, then its spread (standard
    deviation) over the image; what the plain-skin check (``segmentation.skin_check``) reads."""
    parts = []
    for stage in stages:
        stage = stage.float()
        std, mean = torch.std_mean(stage, dim=(2, 3))  # one pass for both
        parts += [mean, stage.amax((2, 3)), std]
    return torch.cat(parts, 1)


class SummarisedNetwork(nn.Module):
    """The segmentation network returning its logit map and the image-level summary of its stages (what runs)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, stages = self.network.forward_stages(x)
        return logits, summarise(stages)


def build_model(config: NetworkConfig | dict | None = None) -> DualAttentionUNet:
    """Build the network from a config object or its dict form (as stored in a weights file)."""
    if isinstance(config, dict):
        config = NetworkConfig(**config)
    return DualAttentionUNet(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, height: int = 224, width: int = 224) -> int:
    """Multiply-accumulates of one forward pass, counted from the convolutions (the rest is negligible)."""
    total = 0

    def hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(1, model.config.in_channels, height, width))
        model.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return total
