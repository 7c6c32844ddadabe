"""Tiny UNets (built with ``t2i_prompt.models.tiny.tiny_unet``) and UNet inputs shared by the attention tests."""

from __future__ import annotations

import torch

from t2i_prompt.models.tiny import tiny_unet


def tiny_sd15_unet():
    """SD1.5 block structure with tiny channels: attention in down1, down2, mid, up1, up2 (LPA's five tags)."""
    return tiny_unet(block_out_channels=(16, 32, 32),
                     down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                     up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))


def tiny_sdxl_unet():
    """SDXL structure: linear projections, 2 transformer layers in the second block, text_time added conditioning."""
    return tiny_unet(cross_attention_dim=64, attention_head_dim=(2, 4), use_linear_projection=True,
                     transformer_layers_per_block=(1, 2), addition_embed_type="text_time", addition_time_embed_dim=8,
                     projection_class_embeddings_input_dim=80)


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


def run_cli(argv, capsys):
    """(exit status, stderr lines) of one CLI call; argparse-level errors exit through SystemExit."""
    from t2i_prompt.cli import main

    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line or "Traceback" in line]
    return code, err


def eval_script(name: str):
    """Import ``eval/<name>.py`` as a module (eval/ is not a package; its scripts import each other by name)."""
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).parent.parent / "eval"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
