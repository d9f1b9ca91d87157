"""The official InvAD denoiser's layout in plain PyTorch 1.13 (method.md §3.1-3.2), module for module,
so its state_dict has the official key names (net.*, cls_embed, unused embedders).

Used by tests to prove the checkpoint path (convert_official_dit.py -> native DiT) without the
official code, which needs torch >= 2 (scaled_dot_product_attention); attention here is the
back-ported softmax(q k^T / sqrt(d)) v.
"""
import math

import torch
from torch import nn


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):
    def __init__(self, in_ch, hidden, patch):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, hidden, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq=256):
        super().__init__()
        self.freq = freq
        self.mlp = nn.Sequential(nn.Linear(freq, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        half = self.freq // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half).to(t.device)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class Attention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, hidden * 3, bias=True)
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, hidden, mlp_hidden):
        super().__init__()
        self.fc1 = nn.Linear(hidden, mlp_hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(mlp_hidden, hidden)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    def __init__(self, hidden, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden, int(hidden * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden, bias=True))

    def forward(self, x, c):
        s1, a1, g1, s2, a2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), s1, a1))
        return x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), s2, a2))


class FinalLayer(nn.Module):
    def __init__(self, hidden, patch, out_ch):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch * patch * out_ch, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden, bias=True))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, in_ch=272, size=16, patch=1, hidden=2048, depth=16, heads=8, mlp_ratio=4.0, num_classes=15):
        super().__init__()
        self.in_ch, self.patch, self.grid = in_ch, patch, size // patch
        self.x_embedder = PatchEmbed(in_ch, hidden, patch)
        self.x_embedder_linear = nn.Linear(in_ch * patch * patch, hidden)  # unused, as in the official code
        self.t_embedder = TimestepEmbedder(hidden)
        self.y_embedder = nn.Module()
        self.y_embedder.embedding_table = nn.Embedding(num_classes + 1, hidden)  # unused
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, hidden))  # trainable
        self.blocks = nn.ModuleList([DiTBlock(hidden, heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden, patch, in_ch)

    def forward(self, x, t):
        b = x.shape[0]
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t)
        for blk in self.blocks:
            x = blk(x, c)
        x = self.final_layer(x, c)
        p, g, ch = self.patch, self.grid, self.in_ch
        x = x.reshape(b, g, g, p, p, ch)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(b, ch, g * p, g * p)


class Denoiser(nn.Module):
    """Official wrapper: `net` is the DiT; `cls_embed` exists but is never used."""

    def __init__(self, **kw):
        super().__init__()
        self.net = DiT(**kw)
        self.cls_embed = nn.Embedding(15, self.net.pos_embed.shape[-1])
