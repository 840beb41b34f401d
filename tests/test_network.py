"""Tests for segmentation.network: shapes, the Table II variants, and each attention module on tiny tensors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segmentation.network import (
    VARIANTS,
    ChannelAttention,
    DecoderFeatureRefinement,
    DoubleConv,
    DualAttentionUNet,
    EncoderFeatureRefinement,
    MultiKernelSpatialAttention,
    NetworkConfig,
    ResidualMultiScaleModule,
    SummarisedNetwork,
    build_model,
    count_macs,
    count_parameters,
    reduced_channels,
    summarise,
)


def _tiny(variant: str = "full", width: int = 4) -> DualAttentionUNet:
    torch.manual_seed(0)
    return build_model(NetworkConfig(variant=variant, base_width=width)).eval()


def _zero_convs(module: nn.Module) -> None:
    with torch.no_grad():
        for conv in module.modules():
            if isinstance(conv, nn.Conv2d):
                conv.weight.zero_()
                if conv.bias is not None:
                    conv.bias.zero_()


def _count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


# ------------------------------------------------------------------------------------------------ the network
@pytest.fixture(scope="module")
def full_model() -> DualAttentionUNet:
    return _tiny("full")


@pytest.mark.parametrize(
    "size",
    [(1, 1), (2, 3), (1, 7), (5, 9), (13, 11), (37, 53), (48, 64), (63, 17)],
    ids=lambda s: f"{s[0]}x{s[1]}",
)
def test_output_has_the_input_size_for_odd_sizes(full_model: DualAttentionUNet, size: tuple[int, int]) -> None:
    # 1x1 is the smallest input that works (in eval mode: every stride-2 stage keeps at least one pixel); 37x53,
    # 13x11 and 63x17 are not divisible by 8, so the decoder must upsample to each skip's exact size.
    with torch.inference_mode():
        out = full_model(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_builds_and_runs(variant: str) -> None:
    model = _tiny(variant)
    assert model.config.variant == variant
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 21, 30))
    assert out.shape == (1, 1, 21, 30)
    assert torch.isfinite(out).all()


# Table II: how many of each block each ablation row has. Encoder 3 + bridge 1 + decoder 3 = 7 blocks (plain
# double-conv or RMSM); DF-RAM and EF-RAM sit in the 3 decoder stages.
BLOCKS = (DoubleConv, ResidualMultiScaleModule, DecoderFeatureRefinement, EncoderFeatureRefinement)
TABLE_II = {
    "unet": dict(zip(BLOCKS, (7, 0, 0, 0), strict=True)),
    "rmsm": dict(zip(BLOCKS, (0, 7, 0, 0), strict=True)),
    "rmsm-dfram": dict(zip(BLOCKS, (0, 7, 3, 0), strict=True)),
    "rmsm-efram": dict(zip(BLOCKS, (0, 7, 0, 3), strict=True)),
    "full": dict(zip(BLOCKS, (0, 7, 3, 3), strict=True)),
}


def test_table_ii_lists_every_variant() -> None:
    assert set(TABLE_II) == set(VARIANTS)


@pytest.mark.parametrize("variant", sorted(TABLE_II))
def test_variants_differ_as_table_ii_says(variant: str) -> None:
    model = _tiny(variant)
    counts = {kind: _count(model, kind) for kind in TABLE_II[variant]}
    assert counts == TABLE_II[variant]
    spec = VARIANTS[variant]
    assert all((stage.refine_skip is not None) == spec.df_ram for stage in model.decoder)
    assert all((stage.refine_output is not None) == spec.ef_ram for stage in model.decoder)


def test_attention_adds_parameters_in_table_order() -> None:
    params = {variant: count_parameters(_tiny(variant)) for variant in VARIANTS}
    assert params["rmsm"] < params["rmsm-dfram"] < params["full"]
    assert params["rmsm"] < params["rmsm-efram"] < params["full"]


def test_network_config_rejects_an_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown variant 'attention-unet'"):
        NetworkConfig(variant="attention-unet")


@pytest.mark.parametrize("field", ["base_width", "reduction_ratio"])
def test_network_config_rejects_non_positive_sizes(field: str) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        NetworkConfig(**{field: 0})


def test_build_model_accepts_the_stored_dict_form() -> None:
    config = NetworkConfig(variant="rmsm-efram", base_width=4, reduction_ratio=8)
    assert build_model(config.to_dict()).config == config


def test_count_macs_and_parameters_are_positive_and_grow_with_width() -> None:
    narrow, wide = _tiny(width=4), _tiny(width=8)
    assert 0 < count_parameters(narrow) < count_parameters(wide)
    assert 0 < count_macs(narrow, 32, 32) < count_macs(wide, 32, 32)
    assert count_macs(narrow, 32, 32) < count_macs(narrow, 64, 64)


def test_count_macs_restores_training_mode_and_removes_its_hooks() -> None:
    model = _tiny().train()
    count_macs(model, 16, 16)
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


# ------------------------------------------------------------------------------------------------ the modules
@pytest.mark.parametrize(
    ("channels", "ratio", "expected"), [(4, 16, 1), (15, 16, 1), (16, 16, 1), (64, 16, 4), (3, 1, 3)]
)
def test_reduced_channels_clamps_to_one(channels: int, ratio: int, expected: int) -> None:
    assert reduced_channels(channels, ratio) == expected


def test_rmsm_shape_and_projection_shortcut() -> None:
    torch.manual_seed(0)
    same, wider = ResidualMultiScaleModule(4, 4).eval(), ResidualMultiScaleModule(3, 6).eval()
    assert isinstance(same.shortcut, nn.Identity)
    assert isinstance(wider.shortcut, nn.Conv2d)
    with torch.inference_mode():
        assert same(torch.randn(2, 4, 7, 9)).shape == (2, 4, 7, 9)
        out = wider(torch.randn(2, 3, 7, 9))
    assert out.shape == (2, 6, 7, 9)
    assert (out >= 0).all(), "ReLU follows the sum"


def test_rmsm_is_residual_when_the_fuse_conv_is_zero() -> None:
    torch.manual_seed(0)
    module = ResidualMultiScaleModule(4, 4).eval()
    _zero_convs(module.fuse)
    x = torch.randn(2, 4, 6, 5)
    with torch.inference_mode():
        assert torch.equal(module(x), torch.relu(x))


def test_channel_and_spatial_attention_are_gates_in_zero_one() -> None:
    torch.manual_seed(0)
    with torch.inference_mode():
        channel = ChannelAttention(8, 4, ratio=16)(torch.randn(2, 8, 5, 6))
        spatial = MultiKernelSpatialAttention(3)(torch.randn(2, 3, 5, 6))
    assert channel.shape == (2, 4, 1, 1)
    assert spatial.shape == (2, 1, 5, 6)
    for gate in (channel, spatial):
        assert ((gate > 0) & (gate < 1)).all()


def test_df_ram_output_has_the_skip_shape() -> None:
    torch.manual_seed(0)
    module = DecoderFeatureRefinement(skip_channels=4, decoder_channels=8).eval()
    skip, decoder = torch.randn(2, 4, 11, 13), torch.randn(2, 8, 6, 7)
    with torch.inference_mode():
        out = module(skip, decoder)
    assert out.shape == skip.shape
    assert (out.abs() <= skip.abs()).all(), "attention only scales the skip feature down"


def test_df_ram_is_skip_times_channel_times_spatial() -> None:
    torch.manual_seed(0)
    module = DecoderFeatureRefinement(skip_channels=4, decoder_channels=8).eval()
    _zero_convs(module)  # both sigmoids see 0, so each gate is exactly 0.5
    skip, decoder = torch.randn(2, 4, 11, 13), torch.randn(2, 8, 6, 7)
    with torch.inference_mode():
        assert torch.equal(module(skip, decoder), skip * 0.25)


def test_ef_ram_is_input_times_channel_times_spatial() -> None:
    torch.manual_seed(0)
    module = EncoderFeatureRefinement(channels=6).eval()
    x = torch.randn(2, 6, 9, 10)
    with torch.inference_mode():
        assert module(x).shape == x.shape
        _zero_convs(module)
        assert torch.equal(module(x), x * 0.25)


def test_attention_modules_build_when_channels_are_below_the_ratio() -> None:
    df, ef = DecoderFeatureRefinement(2, 3, ratio=16), EncoderFeatureRefinement(2, ratio=16)
    assert df.squeeze_skip.out_channels == df.squeeze_decoder.out_channels == 1
    assert ef.squeeze.out_channels == 1
    with torch.inference_mode():
        assert df(torch.randn(1, 2, 4, 4), torch.randn(1, 3, 2, 2)).shape == (1, 2, 4, 4)
        assert ef(torch.randn(1, 2, 4, 4)).shape == (1, 2, 4, 4)


def test_the_summary_holds_each_stages_channel_mean_max_and_spread(full_model: DualAttentionUNet) -> None:
    x = torch.randn(2, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, stages = full_model.forward_stages(x)
        wrapped_logits, summary = SummarisedNetwork(full_model)(x)
        plain = full_model(x)
    assert len(stages) == 7  # three encoder skips, the bridge, three decoder stages
    torch.testing.assert_close(logits, plain)
    torch.testing.assert_close(wrapped_logits, plain)
    channels = [stage.shape[1] for stage in stages]
    assert channels == [4, 8, 16, 32, 16, 8, 4]  # width 4
    assert summary.shape == (2, 3 * sum(channels))
    torch.testing.assert_close(summary, summarise(stages))
    bridge = stages[3]
    start = 3 * sum(channels[:3])  # the bridge's block: mean, max, std of its 32 channels
    torch.testing.assert_close(summary[:, start : start + 32], bridge.mean((2, 3)))
    torch.testing.assert_close(summary[:, start + 32 : start + 64], bridge.amax((2, 3)))
    torch.testing.assert_close(summary[:, start + 64 : start + 96], bridge.std((2, 3)))
    assert not torch.allclose(summary[0], summary[1])  # two images, two summaries
