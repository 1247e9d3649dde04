#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/ (deterministic; run from anywhere). The onnx seeds are copies of the ONNX
reader's test fixtures (tools/export/onnx_reader_fixtures.py writes them). The two JPEG seeds
(corpus/image/python*.jpg) are CPython's Lib/test/imghdrdata test images (PSF license), copied, not generated."""
import json, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


# ---- safetensors ---------------------------------------------------------------------------------
def safetensors(tensors, metadata=None, pad=True):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
write("safetensors", "f32.safetensors", safetensors([("w", "F32", [2, 3], f32(1, -2, 3.5, 0, 0.25, 7))]))
write("safetensors", "mixed.safetensors", safetensors([
    ("a.weight", "F16", [2, 2], struct.pack("<4e", 1.0, -0.5, 2.0, 0.0)),
    ("a.bias", "BF16", [2], struct.pack("<2H", 0x3F80, 0xC000)),
    ("idx", "I32", [3], struct.pack("<3i", 0, -1, 7)),
    ("mask", "U8", [4], bytes([0, 1, 2, 255])),
    ("empty", "F32", [0, 5], b""),
    ("scalar", "F32", [], f32(3.0)),
], {"architecture": "none", "note": "seed"}))
# T2: [rows, K] packed 16 codes per uint32 word, code = weight + 1, padding codes are 1 (zero weight).
t2 = struct.pack("<2I", 0x55555556 & 0xFFFFFFFF, 0x55555564)
write("safetensors", "ternary.safetensors", safetensors([("q.weight", "T2", [2, 3], t2), ("q.scale", "F32", [2], f32(0.5, 2))]))
write("safetensors", "i64_f64.safetensors", safetensors([("x", "I64", [1], struct.pack("<q", -5)), ("y", "F64", [1], struct.pack("<d", 1.5))], pad=False))
write("safetensors", "empty_header.safetensors", safetensors([], {}))

# ---- configs (byte 0: 0 uninformed_students, 1 window_vit, 2 memory_bank; +0x80: UTF-16LE) --------------
us = {"scales": [17, 33], "in_channels": 1, "students": 3, "input_size": [28, 28], "normal_class": 1,
      "validation": {"17": {"e_mean": 62.6, "e_std": 39.3, "v_mean": 0.22, "v_std": 0.1},
                     "33": {"e_mean": 1.5, "e_std": 0.5, "v_mean": 0.2, "v_std": 0.05}},
      "image_score": {"min": 0.1, "max": 2.5, "threshold": 1.0}, "pixel_score": {"min": 0, "max": 1, "threshold": 0.5}}
vit = {"in_channels": 1, "image_size": [26, 26], "patch_size": 2, "embed_dim": 48, "heads": 3, "mlp_ratio": 2,
       "blocks": [{"kind": "window", "window_size": 4, "shift": 0}, {"kind": "window", "window_size": 4, "shift": 2},
                  {"kind": "sparse", "sparsity": 3}], "num_classes": 10, "classes": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
       "mean": 0.286, "std": 0.353, "layer_norm_eps": 1e-6}
mb = {"in_channels": 3, "input_size": [32, 32],
      "features": [{"kind": "pixels", "patch": 8, "stride": 4, "blur": 1.0}, {"kind": "teacher", "scale": 17, "stride": 4}],
      "locally_aware": True, "position_weight": 0.5, "image_score_from": "max_reweighted", "reweight_neighbors": 9,
      "map_sigma": 4.0, "coreset": {"ratio": 0.1, "seed": 7}, "image_score": {"min": 0, "max": 3, "threshold": 1.5},
      "normal_class": 2, "fitted_on": "train/good"}
for i, (name, cfg) in enumerate([("uninformed_students", us), ("window_vit", vit), ("memory_bank", mb)]):
    text = json.dumps(cfg)
    write("config", f"{name}.json.bin", bytes([i]) + text.encode())
    write("config", f"{name}_utf16.json.bin", bytes([0x80 + i]) + text.encode("utf-16-le"))
write("config", "minimal_memory_bank.json.bin", b"\x02" + json.dumps({"in_channels": 1, "input_size": [8, 8], "features": [{"kind": "pixels", "patch": 2, "stride": 1, "blur": 0}]}).encode())


# ---- images --------------------------------------------------------------------------------------
def png(w, h, color_type, bit_depth, rows, interlace=0, palette=None):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, interlace))
    if palette:
        out += chunk(b"PLTE", palette)
    raw = b"".join(bytes([f]) + r for f, r in rows)
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


write("image", "gray_3x2.png", png(3, 2, 0, 8, [(0, bytes([10, 20, 30])), (1, bytes([40, 5, 5]))]))
write("image", "rgb_2x2.png", png(2, 2, 2, 8, [(2, bytes(range(6))), (4, bytes(range(50, 56)))]))
write("image", "rgba16_1x2.png", png(1, 2, 6, 16, [(0, bytes(8)), (3, bytes(range(8)))]))
write("image", "palette_4x1.png", png(4, 1, 3, 2, [(0, bytes([0b00011011]))], palette=bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])))
write("image", "gray_interlaced_4x4.png", png(4, 4, 0, 8, [(0, bytes([7]))] + [(0, bytes([1]))] + [(0, bytes([2, 3]))] + [(0, bytes([4, 5]))] * 2 + [(0, bytes([6, 7, 8, 9]))] * 2, interlace=1))


def bmp(w, h, bpp, pixels, palette=b""):
    stride = (w * bpp // 8 + 3) & ~3
    rows = b"".join(pixels[y] + b"\0" * (stride - len(pixels[y])) for y in range(h))
    off = 14 + 40 + len(palette)
    return (b"BM" + struct.pack("<IHHI", off + len(rows), 0, 0, off)
            + struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, 0, len(rows), 2835, 2835, len(palette) // 4, 0) + palette + rows)


write("image", "rgb24_2x2.bmp", bmp(2, 2, 24, [bytes([0, 0, 255, 0, 255, 0]), bytes([255, 0, 0, 9, 9, 9])]))
write("image", "pal8_3x1.bmp", bmp(3, 1, 8, [bytes([0, 1, 1])], palette=bytes([0, 0, 0, 0, 255, 255, 255, 0])))
write("image", "rgba32_1x1.bmp", bmp(1, 1, 32, [bytes([1, 2, 3, 4])]))


# ---- onnx: the reader's fixtures (torch.onnx.export, onnx.helper), copied ------------------------
FIXTURES = os.path.join(HERE, "..", "tests", "GpuAnomaly.Tests", "Fixtures", "onnx")
for name in ["tiny_cnn.onnx", "tiny_cnn_external.onnx", "typed.onnx", "subgraph.onnx", "tensor_float.pb"]:
    with open(os.path.join(FIXTURES, name), "rb") as f:
        write("onnx", name, f.read())
