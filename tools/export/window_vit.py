"""window_vit: the window-attention backbone of issue 5 (contract: docs/FORMATS.md, `window_vit`).

A readable PyTorch reference, tokens channels-last [B, T = H*W, C] as in timm/Swin:
  patch_embed (Conv2d k=p, s=p, then LayerNorm) -> blocks (pre-norm residual: grouped multi-head
  attention of kind window / shifted window / sparse, then a Mix-FFN MLP with a depthwise 3x3 conv)
  -> LayerNorm -> mean over tokens ("feature") -> Linear head ("logits").

Grouping semantics (what the engine must reproduce):
  window  (ws, shift): pad the normed token map with zeros at the bottom/right to multiples of ws,
          THEN roll by (-shift, -shift), split into ws x ws windows; attention adds the relative
          position bias table[(dy+ws-1)(2ws-1) + (dx+ws-1)] and, if shift > 0, Swin's -100 mask
          computed on the padded map (regions [0, Hp-ws), [Hp-ws, Hp-shift), [Hp-shift, Hp) per axis);
          reverse: merge, roll by (+shift, +shift), crop.
  sparse  (S): pad to multiples of S, group (u, v) = tokens (i*S + u, j*S + v); no bias, no mask.
  Padded tokens are zeros before qkv (so their q/k/v equal the qkv bias); they take part as keys;
  their outputs are discarded.
"""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_BLOCKS = [
    {"kind": "window", "window_size": 7, "shift": 0},
    {"kind": "window", "window_size": 7, "shift": 3},
    {"kind": "sparse", "sparsity": 2},
] * 2


def default_config(num_classes=10, classes=None, embed_dim=64, heads=2, blocks=None):
    return {
        "in_channels": 1,
        "image_size": [28, 28],
        "patch_size": 2,
        "embed_dim": embed_dim,
        "heads": heads,
        "mlp_ratio": 2,
        "blocks": [dict(b) for b in (blocks or DEFAULT_BLOCKS)],
        "num_classes": num_classes,
        "classes": list(classes if classes is not None else range(num_classes)),
        "mean": 0.2860,
        "std": 0.3530,
        "layer_norm_eps": 1e-5,
        "input_scale": "pixel / 255",
    }


def relative_position_index(ws):
    """[ws*ws, ws*ws] long: (dy + ws - 1)(2ws - 1) + (dx + ws - 1), dy = y_i - y_j (i query, j key)."""
    ys, xs = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :]
    dx = xs[:, None] - xs[None, :]
    return (dy + ws - 1) * (2 * ws - 1) + (dx + ws - 1)


def shift_mask(hp, wp, ws, shift):
    """Swin's mask on the padded, rolled map: [nW, ws*ws, ws*ws], 0 inside a region, -100 across."""
    region = torch.zeros(hp, wp)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            region[hs, wsl] = cnt
            cnt += 1
    r = region.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    diff = r[:, None, :] - r[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class WindowAttention(nn.Module):
    """Multi-head attention inside groups of tokens. kind "window" (window_size, shift) or "sparse" (sparsity)."""

    def __init__(self, dim, heads, kind, window_size=7, shift=0, sparsity=2):
        super().__init__()
        assert dim % heads == 0
        self.dim, self.heads, self.kind = dim, heads, kind
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        if kind == "window":
            self.ws, self.shift = window_size, shift
            assert 0 <= shift < window_size
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            # not in the state_dict: the engine derives it from window_size
            self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        elif kind == "sparse":
            self.s = sparsity
        else:
            raise ValueError(f"unknown attention kind {kind!r}")

    def _group(self, x):
        """x [B, Hp, Wp, C] (padded) -> groups [B * nG, G, C] and the geometry to undo it."""
        B, Hp, Wp, C = x.shape
        if self.kind == "window":
            ws = self.ws
            if self.shift:
                x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
            x = x.view(B, Hp // ws, ws, Wp // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
            return x.reshape(-1, ws * ws, C)
        s = self.s
        # token (i*S + u, j*S + v) -> group (u, v), position (i, j)
        x = x.view(B, Hp // s, s, Wp // s, s, C).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(-1, (Hp // s) * (Wp // s), C)

    def _ungroup(self, g, B, Hp, Wp):
        C = g.shape[-1]
        if self.kind == "window":
            ws = self.ws
            x = g.view(B, Hp // ws, Wp // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, C)
            if self.shift:
                x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
            return x
        s = self.s
        return g.view(B, s, s, Hp // s, Wp // s, C).permute(0, 3, 1, 4, 2, 5).reshape(B, Hp, Wp, C)

    def forward(self, x, H, W):
        """x: normed tokens [B, H*W, C] -> [B, H*W, C]."""
        B, T, C = x.shape
        m = self.ws if self.kind == "window" else self.s
        Hp, Wp = -(-H // m) * m, -(-W // m) * m
        x = x.view(B, H, W, C)
        if Hp != H or Wp != W:
            x = F.pad(x, (0, 0, 0, Wp - W, 0, Hp - H))  # zeros at the bottom / right, before qkv
        g = self._group(x)  # [B*nG, G, C]
        n, G, _ = g.shape
        qkv = self.qkv(g).view(n, G, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]  # [n, heads, G, d]
        attn = q @ k.transpose(-2, -1)  # [n, heads, G, G]
        if self.kind == "window":
            bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
            attn = attn + bias.view(G, G, self.heads).permute(2, 0, 1).unsqueeze(0)
            if self.shift:
                mask = shift_mask(Hp, Wp, self.ws, self.shift).to(attn)  # [nW, G, G]
                nW = mask.shape[0]
                attn = attn.view(n // nW, nW, self.heads, G, G) + mask[None, :, None]
                attn = attn.view(n, self.heads, G, G)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(n, G, C)
        out = self.proj(out)
        out = self._ungroup(out, B, Hp, Wp)[:, :H, :W]
        return out.reshape(B, T, C)


class MixFFN(nn.Module):
    """fc1 -> depthwise 3x3 conv (padding 1) on the token map -> GELU (erf) -> fc2 (SparseViT/SegFormer)."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=True)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, H, W):
        B, T, _ = x.shape
        x = self.fc1(x)
        x = x.transpose(1, 2).reshape(B, -1, H, W)
        x = self.dwconv(x).flatten(2).transpose(1, 2)
        return self.fc2(self.act(x))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, spec, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = WindowAttention(dim, heads, spec["kind"], window_size=spec.get("window_size", 7),
                                    shift=spec.get("shift", 0), sparsity=spec.get("sparsity", 2))
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MixFFN(dim, int(dim * mlp_ratio))

    def forward(self, x, H, W):
        x = x + self.attn(self.norm1(x), H, W)
        return x + self.mlp(self.norm2(x), H, W)


class PatchEmbed(nn.Module):
    def __init__(self, in_channels, dim, patch, eps):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x):
        x = self.proj(x)
        H, W = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), H, W


class WindowViT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        C, eps = config["embed_dim"], config["layer_norm_eps"]
        self.patch_embed = PatchEmbed(config["in_channels"], C, config["patch_size"], eps)
        self.blocks = nn.ModuleList(Block(C, config["heads"], config["mlp_ratio"], spec, eps) for spec in config["blocks"])
        self.norm = nn.LayerNorm(C, eps=eps)
        self.head = nn.Linear(C, config["num_classes"])
        # PyTorch's default Linear/Conv init (not timm's trunc_normal 0.02): unit-ish gain makes the blocks
        # active from the first step, which matters for the short CPU training (about one epoch).

    def forward(self, x, return_blocks=False):
        """x: pixel / 255 [B, in_channels, H, W] (normalized here with the config's mean/std).
        Returns (logits [B, classes], feature [B, C]) and, if return_blocks, a dict of intermediates:
        "tokens" (after patch_embed.norm) and "block{i}" (after each block), each [B, T, C]."""
        x = (x - self.config["mean"]) / self.config["std"]
        x, H, W = self.patch_embed(x)
        inter = {"tokens": x}
        for i, blk in enumerate(self.blocks):
            x = blk(x, H, W)
            inter[f"block{i}"] = x
        feature = self.norm(x).mean(dim=1)
        logits = self.head(feature)
        return (logits, feature, inter) if return_blocks else (logits, feature)

    # -- safetensors (docs/FORMATS.md, window_vit) --
    def tensors(self):
        return {k: v.detach().cpu().float().numpy() for k, v in self.state_dict().items()}

    def metadata(self, provenance):
        return {"format": "gpuanomaly", "architecture": "window_vit",
                "config": json.dumps(self.config), "provenance": json.dumps(provenance)}

    @classmethod
    def from_file(cls, path):
        import safetensors_io
        tensors, meta = safetensors_io.load(path)
        assert meta.get("architecture") == "window_vit", meta.get("architecture")
        model = cls(json.loads(meta["config"]))
        # A `gpuanomaly fit-ood` file also holds the OOD fit ("vim.*", "ood.*"; docs/FORMATS.md): not model weights.
        weights = {k: v for k, v in tensors.items() if not k.startswith(("vim.", "ood."))}
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        return model.eval(), meta
