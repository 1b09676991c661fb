"""``MultiheadAttention`` with heads removed: :class:`PrunedMultiheadAttention`.

``nn.MultiheadAttention`` ties its inner width to ``embed_dim``
(``num_heads * head_dim == embed_dim``), so an attention layer that lost
heads cannot be one. This layer keeps ``embed_dim`` (its input and output)
and computes the same attention over the kept heads only: q, k and v rows
of the kept heads, their columns of ``out_proj``. Imports torch only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PrunedMultiheadAttention"]


class PrunedMultiheadAttention(nn.Module):
    """The kept ``heads`` of ``source`` (an ``nn.MultiheadAttention`` with
    one ``in_proj_weight``), as a layer of the same call signature.

    Its first output equals ``source``'s when the other heads' q, k, v rows
    and ``out_proj`` columns are zero. The attention weights (second output)
    are those of the kept heads (averaged over them with
    ``average_attn_weights=True``).
    """

    def __init__(self, source: nn.MultiheadAttention, heads: torch.Tensor):
        super().__init__()
        heads = torch.as_tensor(heads, dtype=torch.long).cpu()
        e, d = source.embed_dim, source.head_dim
        self.embed_dim, self.head_dim = e, d
        self.num_heads = int(heads.numel())
        self.batch_first, self.dropout = source.batch_first, source.dropout
        self.register_buffer("heads", heads.clone(), persistent=False)
        self.source_heads = source.num_heads
        rows = (heads[:, None] * d + torch.arange(d)).reshape(-1)
        rows3 = torch.cat([rows + s * e for s in range(3)]).to(
            source.in_proj_weight.device
        )
        self.in_proj_weight = nn.Parameter(
            source.in_proj_weight.detach()[rows3].clone()
        )
        bias = source.in_proj_bias
        self.in_proj_bias = (
            nn.Parameter(bias.detach()[rows3].clone()) if bias is not None else None
        )
        out = source.out_proj
        self.out_proj = nn.Linear(
            rows.numel(),
            e,
            bias=out.bias is not None,
            device=out.weight.device,
            dtype=out.weight.dtype,
        )
        with torch.no_grad():
            self.out_proj.weight.copy_(out.weight[:, rows.to(out.weight.device)])
            if out.bias is not None:
                self.out_proj.bias.copy_(out.bias)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights=True,
        attn_mask=None,
        average_attn_weights=True,
        is_causal=False,
    ):
        batched = query.dim() == 3
        if not batched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        t, b, _ = query.shape
        s, h, d = key.shape[0], self.num_heads, self.head_dim
        w = self.in_proj_weight.chunk(3)
        bias = (
            self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None,) * 3
        )
        q, k, v = (
            F.linear(x, wi, bi) for x, wi, bi in zip((query, key, value), w, bias)
        )
        q = q.reshape(t, b * h, d).transpose(0, 1)
        k = k.reshape(s, b * h, d).transpose(0, 1)
        v = v.reshape(s, b * h, d).transpose(0, 1)
        scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(d)
        scores = scores + self._mask(attn_mask, key_padding_mask, b, t, s, scores.dtype)
        attn = torch.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            attn = F.dropout(attn, p=self.dropout)
        out = torch.bmm(attn, v).transpose(0, 1).reshape(t, b, h * d)
        out = self.out_proj(out)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        elif not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        weights = attn.reshape(b, h, t, s)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights if batched else weights.squeeze(0))

    def _mask(self, attn_mask, key_padding_mask, b, t, s, dtype):
        """The additive mask ``(b*h, t, s)`` of ``attn_mask`` (2-d, or 3-d per
        source head) and ``key_padding_mask``."""
        mask = torch.zeros((), dtype=dtype, device=self.in_proj_weight.device)
        if attn_mask is not None:
            m = _additive(attn_mask, dtype)
            if m.dim() == 3:  # (b * source heads, t, s): the kept heads'
                m = m.reshape(b, self.source_heads, t, s)[:, self.heads].reshape(
                    -1, t, s
                )
            mask = mask + m
        if key_padding_mask is not None:
            pad = _additive(key_padding_mask, dtype).reshape(b, 1, 1, s)
            mask = mask + pad.expand(b, self.num_heads, 1, s).reshape(-1, 1, s)
        return mask


def _additive(mask, dtype):
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf")
        )
    return mask.to(dtype)
