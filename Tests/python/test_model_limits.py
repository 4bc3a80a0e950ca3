"""A model config that asks for more weights than the machine has memory is refused up front,
with a message, before any weight is allocated (the dry run of WeightBudget)."""

import json
import os
import time

import pytest

import diffattn
from fixtures import REPO


def test_oversized_model_is_refused_before_allocating():
    with open(os.path.join(REPO, "Tests", "Fixtures", "models", "sd3", "config.json")) as fh:
        cfg = json.load(fh)
    # 64 joint blocks of width 8192: ~2 GB of attention weights per block, far past any RAM here.
    cfg.update(num_layers=64, attention_head_dim=128, num_attention_heads=64, joint_attention_dim=8192,
               caption_projection_dim=8192)
    start = time.perf_counter()
    with pytest.raises(MemoryError, match="memory"):
        diffattn.models.SD3Transformer2DModel.from_config(cfg)
    assert time.perf_counter() - start < 5, "the refusal must come from counting, not from allocating"


def test_tiny_model_still_builds():
    with open(os.path.join(REPO, "Tests", "Fixtures", "models", "sd3", "config.json")) as fh:
        cfg = json.load(fh)
    model = diffattn.models.SD3Transformer2DModel.from_config(cfg)
    assert len(model.attn_processors) > 0


def test_group_norm_groups_must_divide_block_widths():
    # torch.nn.GroupNorm raises ValueError when diffusers builds the resnets of such a UNet.
    with open(os.path.join(REPO, "Tests", "Fixtures", "models", "unet2d", "config.json")) as fh:
        cfg = json.load(fh)
    widths = cfg["block_out_channels"]
    groups = next(g for g in range(3, 64) if widths[0] % g)
    cfg["norm_num_groups"] = groups
    with pytest.raises(ValueError, match=rf"num_channels \({widths[0]}\) must be divisible by num_groups \({groups}\)"):
        diffattn.models.UNet2DConditionModel.from_config(cfg)
