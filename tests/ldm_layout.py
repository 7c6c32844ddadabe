"""diffusers -> original LDM (CompVis / SGM) key layout, to save tiny SD1.5 and SDXL pipelines as the single files
users have.

The inverse of diffusers' ``convert_ldm_unet_checkpoint`` / ``convert_ldm_vae_checkpoint`` /
``convert_ldm_clip_checkpoint`` / ``convert_open_clip_checkpoint`` (diffusers: src/diffusers/loaders/
single_file_utils.py) for SD1.x/SDXL UNets, VAEs, CLIP and OpenCLIP text encoders; the tests check it against those
functions (a round trip gives back every tensor).
"""

from __future__ import annotations

import re

import torch

_UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
_OPEN_CLIP = (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj"),
              ("self_attn.out_proj", "attn.out_proj"))
_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
           ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_VAE_ATTN = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))


def _resnet(rest: str, table=_RESNET) -> str:
    for new, old in table:
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest


def unet_key(key: str, config: dict) -> str:
    per = config["layers_per_block"] + 1
    up_attn = [t.startswith("CrossAttn") for t in config["up_block_types"]]
    for new, old in _UNET_TOP.items():
        if key.startswith(new + "."):
            return old + key[len(new):]
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        return f"input_blocks.{1 + i * per + j}." + ("0." + _resnet(rest) if kind == "resnets" else "1." + rest)
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(m[1]) + 1) * per}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        return f"output_blocks.{i * per + j}." + ("0." + _resnet(rest) if kind == "resnets" else "1." + rest)
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        i = int(m[1])
        return f"output_blocks.{i * per + per - 1}.{2 if up_attn[i] else 1}.conv.{m[2]}"
    raise KeyError(key)


def vae_key(key: str, config: dict) -> str:
    n = len(config["block_out_channels"])
    shortcut = (("conv_shortcut", "nin_shortcut"),)
    if m := re.match(r"(encoder|decoder)\.conv_norm_out\.(.*)", key):
        return f"{m[1]}.norm_out.{m[2]}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{_resnet(m[3], shortcut)}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"decoder.up.{n - 1 - int(m[1])}.block.{m[2]}.{_resnet(m[3], shortcut)}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        return f"decoder.up.{n - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{_resnet(m[3], shortcut)}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
        return f"{m[1]}.mid.attn_1.{_resnet(m[2], _VAE_ATTN)}"
    return key  # conv_in, conv_out, quant_conv, post_quant_conv


def open_clip_state(text_encoder, prefix: str) -> dict[str, torch.Tensor]:
    """A transformers CLIPTextModelWithProjection in OpenCLIP's layout (fused q/k/v ``in_proj``, transposed
    ``text_projection``), as SDXL's ``conditioner.embedders.1.model.`` holds it."""
    state, out = text_encoder.state_dict(), {}
    top = {"text_model.embeddings.position_embedding.weight": "positional_embedding",
           "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
           "text_model.final_layer_norm.weight": "ln_final.weight", "text_model.final_layer_norm.bias": "ln_final.bias"}
    for key, value in state.items():
        if key in top:
            out[prefix + top[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T
        elif m := re.match(r"text_model\.encoder\.layers\.(\d+)\.(.*)", key):
            layer, rest = f"{prefix}transformer.resblocks.{m[1]}.", m[2]
            if m2 := re.match(r"self_attn\.q_proj\.(weight|bias)", rest):
                parts = [state[key.replace("q_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
                out[layer + f"attn.in_proj_{m2[1]}"] = torch.cat(parts)
            elif not re.match(r"self_attn\.[kv]_proj\.", rest):
                out[layer + _resnet(rest, _OPEN_CLIP)] = value
        else:
            raise KeyError(key)
    return out


def _unet_vae(unet, vae) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in unet.state_dict().items():
        out["model.diffusion_model." + unet_key(key, unet.config)] = value
    for key, value in vae.state_dict().items():
        if "mid_block.attentions" in key and key.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]  # LDM's VAE attention projections are 1x1 convolutions
        out["first_stage_model." + vae_key(key, vae.config)] = value
    return out


def _clip(text_encoder, prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + (k if k.startswith("text_model.") else "text_model." + k): v
            for k, v in text_encoder.state_dict().items()}


def sd15_single_file_state(unet, vae, text_encoder) -> dict[str, torch.Tensor]:
    """One state dict in the original SD1.x single-file layout (model.diffusion_model., first_stage_model.,
    cond_stage_model.transformer.text_model.)."""
    out = {**_unet_vae(unet, vae), **_clip(text_encoder, "cond_stage_model.transformer.")}
    return {k: v.contiguous() for k, v in out.items()}


def sdxl_single_file_state(unet, vae, text_encoder, text_encoder_2) -> dict[str, torch.Tensor]:
    """SDXL base's single-file layout: the SGM names of both text towers (conditioner.embedders.{0,1}.)."""
    out = {**_unet_vae(unet, vae), **_clip(text_encoder, "conditioner.embedders.0.transformer."),
           **open_clip_state(text_encoder_2, "conditioner.embedders.1.model.")}
    return {k: v.contiguous() for k, v in out.items()}

