"""One attention processor for every hooked layer of SD1.x, SDXL and the shapes UNet.

The preamble (spatial norm, 4D -> 3D, group norm, q/k/v projections, head split) is diffusers' ``AttnProcessor2_0``
written once (``project``) with its epilogue (``finish``); in between, hooks add an attention bias, edit the
encoder states or the output. Attention itself stays on ``F.scaled_dot_product_attention``: masks are additive
biases, and when a hook needs probabilities (map capture) the kernel's log-sum-exp is used so only the requested
tokens' probabilities are ever computed (``exp(q·k_j * scale + bias_j - lse)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ProjectedAttention", "project", "finish", "sdpa_with_lse", "HookedAttnProcessor"]


@dataclass
class ProjectedAttention:
    """q/k/v after the preamble plus what the epilogue needs; q, k, v are (B, heads, N, head_dim)."""

    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    encoder_hidden_states: torch.Tensor  # (B, Nk, D) after norm_cross; hidden states for self-attention
    attention_mask: torch.Tensor | None  # (B, heads, Nq|1, Nk) additive, from the caller
    residual: torch.Tensor
    input_shape: tuple[int, ...]  # hidden_states shape before the 4D -> 3D reshape
    hw: tuple[int, int] | None  # spatial size when the input was 4D


def project(attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, edit_context=None):
    """Diffusers' ``AttnProcessor2_0`` preamble; ``edit_context(states) -> states`` may rewrite the cross-attention context."""
    residual = hidden_states
    if attn.spatial_norm is not None:
        hidden_states = attn.spatial_norm(hidden_states, temb)
    input_shape = tuple(hidden_states.shape)
    hw = None
    if hidden_states.ndim == 4:
        batch, channels, height, width = hidden_states.shape
        hw = (height, width)
        hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)  # (B, HW, C)
    is_cross = encoder_hidden_states is not None
    batch, seq_len, _ = hidden_states.shape if not is_cross else encoder_hidden_states.shape
    if attention_mask is not None:
        attention_mask = attn.prepare_attention_mask(attention_mask, seq_len, batch)
        attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    query = attn.to_q(hidden_states)
    if not is_cross:
        encoder_hidden_states = hidden_states
    elif attn.norm_cross:
        encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
    if is_cross and edit_context is not None:
        encoder_hidden_states = edit_context(encoder_hidden_states)
    key = attn.to_k(encoder_hidden_states)
    value = attn.to_v(encoder_hidden_states)
    head_dim = key.shape[-1] // attn.heads
    query, key, value = (split_heads(x, attn.heads, head_dim) for x in (query, key, value))
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return ProjectedAttention(query, key, value, encoder_hidden_states, attention_mask, residual, input_shape, hw)


def split_heads(x: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
    """(B, N, heads*head_dim) -> (B, heads, N, head_dim)."""
    return x.view(x.shape[0], -1, heads, head_dim).transpose(1, 2)


def finish(attn, out: torch.Tensor, proj: ProjectedAttention) -> torch.Tensor:
    """Diffusers' epilogue: merge heads, ``to_out``, back to 4D, residual, rescale. ``out`` is (B, heads, N, head_dim)."""
    batch, heads, _, head_dim = out.shape
    hidden_states = out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(proj.query.dtype)  # (B, N, C)
    hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
    if len(proj.input_shape) == 4:
        hidden_states = hidden_states.transpose(-1, -2).reshape(proj.input_shape)
    if attn.residual_connection:
        hidden_states = hidden_states + proj.residual
    return hidden_states / attn.rescale_output_factor


def sdpa_with_lse(query, key, value, bias=None) -> tuple[torch.Tensor, torch.Tensor]:
    """SDPA output (B, h, N, d) and its log-sum-exp (B, h, N) of ``q·k*scale + bias``.

    On CPU the flash kernel returns both at no extra cost (the same kernel ``F.scaled_dot_product_attention``
    dispatches to); elsewhere, and whenever autograd is recording, the log-sum-exp is computed from explicit logits:
    the kernel's log-sum-exp output carries no gradient (aten marks it non-differentiable), and without it the
    gradient of a probability ``exp(q·k - lse)`` misses the softmax normalisation (DPL's losses then climb).
    """
    recording = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (query, key, value, bias))
    if not recording and query.device.type == "cpu" and query.dtype in (torch.float32, torch.bfloat16):
        op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
        if op is not None:
            out, lse = op(query, key, value, 0.0, False, attn_mask=bias)
            return out, lse
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=bias)
    logits = query @ key.transpose(-1, -2) * query.shape[-1] ** -0.5  # (B, h, N, Nk)
    if bias is not None:
        logits = logits + bias
    return out, torch.logsumexp(logits, dim=-1)


def add_bias(total: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor | None:
    """Sum of additive attention biases (either may be None); shapes broadcast to (B, heads, Nq, Nk)."""
    if bias is None:
        return total
    return bias if total is None else total + bias


class AttentionCall:
    """What a hook sees after attention ran: the projected q/k/v, the bias used, and the output so far."""

    query = property(lambda self: self.proj.query)
    key = property(lambda self: self.proj.key)
    value = property(lambda self: self.proj.value)
    encoder_hidden_states = property(lambda self: self.proj.encoder_hidden_states)

    def __init__(self, attn, proj: ProjectedAttention, bias, out, lse=None):
        self.attn = attn
        self.proj = proj  # query/key/value (B, heads, N, head_dim), encoder states, spatial size
        self.bias = bias  # (B|1, heads|1, Nq|1, Nk) or None
        self.out = out  # (B, heads, N, head_dim)
        self.lse = lse  # (B, heads, N) when a hook asked for probabilities

    def token_probs(self, rows: slice, token_ids: torch.Tensor) -> torch.Tensor:
        """Attention probabilities of the batch ``rows`` on the keys ``token_ids``: (b, heads, N, len(token_ids)).

        Only ``q·k_j`` for the chosen keys is computed; normalisation comes from the kernel's log-sum-exp.
        """
        q = self.query[rows]
        k = self.key[rows][:, :, token_ids]  # (b, h, T, d)
        logits = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5  # (b, h, N, T)
        if self.bias is not None:
            bias = self.bias.expand(self.query.shape[0], -1, -1, -1)[rows]
            logits = logits + bias[..., token_ids]
        return torch.exp(logits - self.lse[rows].unsqueeze(-1))


class HookedAttnProcessor:
    """The processor the controller installs on layers some hook touches.

    Per call: ask the controller for the context (None while suspended, e.g. inside hard binding's own UNet
    passes), let the active hooks edit the context tokens and add biases, run SDPA, let hooks observe/edit the
    output. With no active hook it is exactly ``AttnProcessor2_0``.
    """

    def __init__(self, controller, layer, hooks):
        self.controller = controller
        self.layer = layer
        self.hooks = list(hooks)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        ctx = self.controller.context(self.layer, hidden_states)
        active = [h for h in self.hooks if h.is_active(ctx)] if ctx is not None else []

        def edit_context(states):
            for hook in active:
                states = hook.edit_context(ctx, attn, states)
            return states

        proj = project(attn, hidden_states, encoder_hidden_states, attention_mask, temb, edit_context if active else None)
        if not active:
            out = F.scaled_dot_product_attention(proj.query, proj.key, proj.value, attn_mask=proj.attention_mask)
            return finish(attn, out, proj)
        ctx.set_queries(proj.query.shape[2], proj.hw)
        bias = proj.attention_mask
        for hook in active:
            bias = add_bias(bias, hook.attention_bias(ctx, proj.query.shape[2], proj.key.shape[2]))
        if bias is not None:
            bias = bias.to(device=proj.query.device, dtype=proj.query.dtype)
        lse = None
        if any(h.needs_probabilities for h in active):
            out, lse = sdpa_with_lse(proj.query, proj.key, proj.value, bias)
        else:
            out = F.scaled_dot_product_attention(proj.query, proj.key, proj.value, attn_mask=bias)
        call = AttentionCall(attn, proj, bias, out, lse)
        for hook in active:
            new = hook.after_attention(ctx, call)
            if new is not None:
                call.out = new
        return finish(attn, call.out, proj)


def infer_hw(num_queries: int, latent_hw: tuple[int, int] | None, factor: int) -> tuple[int, int]:
    """Spatial size of a layer with ``num_queries`` positions, from the latent size and the layer's downsampling."""
    if latent_hw is not None:
        h, w = latent_hw
        for _ in range(int(math.log2(factor))):
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        if h * w == num_queries:
            return h, w
    side = math.isqrt(num_queries)
    if side * side == num_queries:
        return side, side
    raise ValueError(
        f"Cannot infer the spatial size of an attention layer with {num_queries} queries; "
        "call controller.on_start(run) (or set_latent_size) before the UNet forward."
    )
