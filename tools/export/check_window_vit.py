"""Independent numpy (float64) recomputation of window_vit fixtures, to prove that the PyTorch reference
(window_vit.py) means what docs/FORMATS.md `window_vit` says. It shares no code with window_vit.py: every
group is built from explicit token coordinates (no roll / partition / padding of tensors), the shift mask
from the region rule, the bias from the (dy, dx) rule, the convolutions from explicit loops.

    /usr/bin/python3 tools/export/check_window_vit.py   # checks both fixtures; exits 1 on a mismatch
    /usr/bin/python3 tools/export/check_window_vit.py --model M.safetensors --golden G.safetensors
"""
import argparse
import json
import math
import os
import sys

import numpy as np

import safetensors_io

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIX = os.path.join(ROOT, "tests", "GpuAnomaly.Tests", "Fixtures")
PAIRS = [(os.path.join(ROOT, "src", "Models", "Default", "window_vit_fmnist.safetensors"),
          os.path.join(FIX, "window_vit_golden.safetensors")),
         (os.path.join(FIX, "window_vit_small.safetensors"), os.path.join(FIX, "window_vit_small_golden.safetensors"))]

_erf = np.vectorize(math.erf)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def linear(x, t, name):
    return x @ t[name + ".weight"].T + t[name + ".bias"]


def groups_of(kind, spec, H, W):
    """List of groups; a group = list of (y, x, a, b, region) over the PADDED map: (y, x) the token's
    position in the padded (unrolled) map, (a, b) its position inside the group, region for the mask."""
    if kind == "window":
        ws, sh = spec["window_size"], spec["shift"]
        Hp, Wp = -(-H // ws) * ws, -(-W // ws) * ws

        def region(r, n):  # r: coordinate in the rolled map
            return 0 if r < n - ws else (1 if r < n - sh else 2)

        out = []
        for wi in range(Hp // ws):
            for wj in range(Wp // ws):
                g = []
                for a in range(ws):
                    for b in range(ws):
                        r, c = wi * ws + a, wj * ws + b  # rolled coordinates
                        y, x = (r + sh) % Hp, (c + sh) % Wp  # roll by -shift: rolled[r] = padded[r + shift]
                        reg = region(r, Hp) * 3 + region(c, Wp) if sh else 0
                        g.append((y, x, a, b, reg))
                out.append(g)
        return out
    S = spec["sparsity"]
    Hp, Wp = -(-H // S) * S, -(-W // S) * S
    return [[(i * S + u, j * S + v, i, j, 0) for i in range(Hp // S) for j in range(Wp // S)]
            for u in range(S) for v in range(S)]


def attention(xn, t, p, spec, heads, H, W):
    """xn [T, C] normed tokens of one image -> [T, C]."""
    C = xn.shape[1]
    d = C // heads
    out = np.zeros_like(xn)
    for g in groups_of(spec["kind"], spec, H, W):
        G = len(g)
        # tokens outside the map are zeros before qkv
        xg = np.stack([xn[y * W + x] if (y < H and x < W) else np.zeros(C) for (y, x, _, _, _) in g])
        qkv = linear(xg, t, p + ".qkv")
        o = np.zeros((G, C))
        for h in range(heads):
            q = qkv[:, h * d:(h + 1) * d] * d ** -0.5
            k = qkv[:, C + h * d:C + (h + 1) * d]
            v = qkv[:, 2 * C + h * d:2 * C + (h + 1) * d]
            s = q @ k.T
            if spec["kind"] == "window":
                ws = spec["window_size"]
                table = t[p + ".relative_position_bias_table"]
                for i in range(G):
                    for j in range(G):
                        dy, dx = g[i][2] - g[j][2], g[i][3] - g[j][3]
                        s[i, j] += table[(dy + ws - 1) * (2 * ws - 1) + (dx + ws - 1), h]
                        if g[i][4] != g[j][4]:
                            s[i, j] -= 100.0
            s = np.exp(s - s.max(1, keepdims=True))
            o[:, h * d:(h + 1) * d] = (s / s.sum(1, keepdims=True)) @ v
        o = linear(o, t, p + ".proj")
        for n, (y, x, _, _, _) in enumerate(g):
            if y < H and x < W:
                out[y * W + x] = o[n]
    return out


def mix_ffn(xn, t, p, H, W):
    h = linear(xn, t, p + ".fc1")  # [T, hC]
    k, kb = t[p + ".dwconv.weight"][:, 0], t[p + ".dwconv.bias"]  # [hC, 3, 3]
    m = h.reshape(H, W, -1)
    conv = np.tile(kb, (H, W, 1)).astype(np.float64)
    for y in range(H):
        for x in range(W):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if 0 <= y + dy < H and 0 <= x + dx < W:
                        conv[y, x] += m[y + dy, x + dx] * k[:, dy + 1, dx + 1]
    conv = conv.reshape(H * W, -1)
    return linear(0.5 * conv * (1 + _erf(conv / math.sqrt(2))), t, p + ".fc2")


def forward(t, cfg, img):
    """img [in_channels, IH, IW] pixel / 255 -> dict of float64 intermediates."""
    eps, P, C = cfg["layer_norm_eps"], cfg["patch_size"], cfg["embed_dim"]
    x = (img - cfg["mean"]) / cfg["std"]
    H, W = (x.shape[1] - P) // P + 1, (x.shape[2] - P) // P + 1
    wt, bt = t["patch_embed.proj.weight"], t["patch_embed.proj.bias"]  # [C, in, P, P]
    tok = np.zeros((H * W, C))
    for y in range(H):
        for xx in range(W):
            patch = x[:, y * P:(y + 1) * P, xx * P:(xx + 1) * P]
            tok[y * W + xx] = (wt * patch[None]).reshape(C, -1).sum(1) + bt
    tok = layer_norm(tok, t["patch_embed.norm.weight"], t["patch_embed.norm.bias"], eps)
    res = {"tokens": tok}
    for i, spec in enumerate(cfg["blocks"]):
        p = f"blocks.{i}"
        tok = tok + attention(layer_norm(tok, t[p + ".norm1.weight"], t[p + ".norm1.bias"], eps),
                              t, p + ".attn", spec, cfg["heads"], H, W)
        tok = tok + mix_ffn(layer_norm(tok, t[p + ".norm2.weight"], t[p + ".norm2.bias"], eps), t, p + ".mlp", H, W)
        res[f"block{i}"] = tok
    res["feature"] = layer_norm(tok, t["norm.weight"], t["norm.bias"], eps).mean(0)
    res["logits"] = linear(res["feature"], t, "head")
    return res


def check(model_path, golden_path, tol=1e-5):
    t, meta = safetensors_io.load(model_path)
    t = {k: v.astype(np.float64) for k, v in t.items()}
    cfg = json.loads(meta["config"])
    g, _ = safetensors_io.load(golden_path)
    outs = [forward(t, cfg, img.astype(np.float64)) for img in g["input"]]
    ok = True
    for name in ["tokens"] + [f"block{i}" for i in range(len(cfg["blocks"]))] + ["feature", "logits"]:
        ours = np.stack([o[name] for o in outs])
        ref = g[name].astype(np.float64)
        err = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
        ok &= bool(err <= tol) and ours.shape == ref.shape
        print(f"  {name:8s} {str(ref.shape):16s} rel L2 {err:.2e}")
    print(f"{os.path.basename(golden_path)}: {'OK' if ok else 'MISMATCH'} (tolerance {tol})")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--golden")
    args = ap.parse_args()
    pairs = [(args.model, args.golden)] if args.model else PAIRS
    sys.exit(0 if all([check(m, g) for m, g in pairs]) else 1)


if __name__ == "__main__":
    main()
