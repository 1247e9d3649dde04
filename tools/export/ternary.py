"""1.58-bit ternary weights (BitNet b1.58, METHODS.md section 3): quantizer, the T2 packed layout, fake quantization
for quantization-aware training (straight-through estimator), bit for bit what the engine does.

- absmean quantizer: gamma = mean |W| (per tensor, or per output row), summed in float64 and rounded to float32;
  W_t = clamp(round(W / max(gamma, 1e-5)), -1, 1) with the division in float32 and round half to even
  (torch.round), as src/Kernels/Ternary/TernaryQuantizer.cs.
- T2 layout (docs/FORMATS.md): code = w + 1, 16 codes per little-endian uint32, weight k of a row at bits 2*(k%16)
  of word k/16, rows padded to a whole word with code 1; the weight [rows, ...] keeps its shape in the header,
  its gamma is `{name}_scale` ([1] or [rows], F32), the activation mode is in __metadata__["ternary"].
- A8 activations: s = 127 / max(max|x|, 1e-5), x_q = clamp(round(x s), -128, 127); per token for Linear, per image
  for Conv2d (TernaryConv2dParams.cs explains why).
"""
import json

import numpy as np
import torch

MIN_GAMMA = 1e-5


def absmean(w, per_row):
    """w: float32 tensor [rows, ...] -> (values int8 tensor, same shape; gamma float32 [1] or [rows])."""
    w = w.detach().float()
    flat = w.reshape(w.shape[0], -1)
    if per_row:
        gamma = flat.double().abs().mean(1).float()
        g = gamma.clamp(min=MIN_GAMMA).view(-1, 1)
    else:
        gamma = flat.double().abs().mean().float().reshape(1)
        g = gamma.clamp(min=MIN_GAMMA)
    values = torch.round(flat / g).clamp(-1, 1).to(torch.int8)
    return values.reshape(w.shape), gamma


def dequantize(values, gamma):
    v = values.float().reshape(values.shape[0], -1)
    g = gamma.view(-1, 1) if gamma.numel() > 1 else gamma
    return (v * g).reshape(values.shape)


def words(k):
    return (k + 15) // 16


def pack(values):
    """int8 ternary values [rows, ...] -> uint32 numpy array [rows, words(K)]."""
    v = np.asarray(values, np.int64).reshape(values.shape[0], -1)
    rows, k = v.shape
    if v.min() < -1 or v.max() > 1:
        raise ValueError("ternary values must be -1, 0 or +1")
    codes = np.ones((rows, words(k) * 16), np.uint64)  # padding: code 1 (weight 0)
    codes[:, :k] = v + 1
    codes = codes.reshape(rows, -1, 16)
    out = np.zeros((rows, codes.shape[1]), np.uint64)
    for j in range(16):
        out |= codes[:, :, j] << np.uint64(2 * j)
    return out.astype(np.uint32)


def unpack(packed, shape):
    rows = shape[0]
    k = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    p = np.asarray(packed, np.uint32).reshape(rows, words(k)).astype(np.uint64)
    codes = np.stack([(p >> np.uint64(2 * j)) & np.uint64(3) for j in range(16)], axis=2).reshape(rows, -1)
    if (codes == 3).any():
        raise ValueError("invalid code 3")
    return (codes[:, :k].astype(np.int64) - 1).astype(np.int8).reshape(shape)


class Packed:
    """A T2 tensor for safetensors_io.save: logical shape + packed words."""
    dtype_tag = "T2"

    def __init__(self, values):
        self.shape = tuple(values.shape)
        self.words = pack(values.cpu().numpy() if torch.is_tensor(values) else values)

    def tobytes(self):
        return self.words.astype("<u4").tobytes()


def quantize_tensors(tensors, select, per_row, activations, metadata):
    """Replaces every float `*.weight` of rank 2 or 4 whose name matches `select` (a compiled regex) by a Packed T2 tensor
    and its `_scale`; records the layers in metadata["ternary"] (updated in place). Returns the dict and the names."""
    out, names = dict(tensors), []
    ternary = json.loads(metadata.get("ternary", "{}"))
    for name, w in tensors.items():
        if not (isinstance(w, np.ndarray) and name.endswith(".weight") and w.ndim in (2, 4) and w.dtype == np.float32
                and select.search(name) and name + "_scale" not in tensors):
            continue
        values, gamma = absmean(torch.from_numpy(w), per_row)
        out[name] = Packed(values)
        out[name + "_scale"] = gamma.numpy().astype(np.float32)
        ternary[name] = {"activations": activations, "scale": "row" if per_row else "tensor"}
        names.append(name)
    metadata["ternary"] = json.dumps(ternary)
    return out, names


# ---- fake quantization for QAT (straight-through estimator) ----

def fake_weight(w, per_row):
    """Forward: gamma * W_t; backward: identity (STE), as BitNet trains."""
    values, gamma = absmean(w, per_row)
    return w + (dequantize(values, gamma).to(w.dtype) - w).detach()


def fake_a8(x, per="image"):
    """Forward: the int8 quantize-dequantize the engine's A8 kernels compute; backward: identity."""
    dims = tuple(range(1, x.dim())) if per == "image" else (x.dim() - 1,)
    amax = x.detach().abs().amax(dim=dims, keepdim=True).clamp(min=MIN_GAMMA)
    s = 127.0 / amax
    q = torch.round(x.detach() * s).clamp(-128, 127) / s
    return x + (q - x).detach()
