"""Tiny UNets and a minimal pipeline stand-in shared by the attention tests (no tests here)."""

from __future__ import annotations

import torch


def tiny_sd15_unet():
    """SD1.5 block structure with tiny channels: attention in down1, down2, mid, up1, up2 (LPA's five tags)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    ).eval()


def tiny_sdxl_unet():
    """SDXL structure: linear projections, 2 transformer layers in the second block, text_time added conditioning."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 2),
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=80,
        norm_num_groups=8,
    ).eval()


def unet_inputs(unet, batch=2, hw=16, seq=77, seed=1):
    """(sample, timestep, encoder_hidden_states, extra kwargs) for one CFG-batch forward."""
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 4, hw, hw, generator=g)
    states = torch.randn(batch, seq, unet.config.cross_attention_dim, generator=g)
    kwargs = {}
    if unet.config.addition_embed_type == "text_time":
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(batch, 32, generator=g),
            "time_ids": torch.tensor([[hw * 8, hw * 8, 0, 0, hw * 8, hw * 8]] * batch, dtype=torch.float32),
        }
    return sample, torch.tensor(500), states, kwargs
