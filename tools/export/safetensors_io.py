"""Minimal safetensors reader/writer (numpy), following the published format.

8-byte little-endian header length N, N bytes of JSON (padded with spaces to a multiple of 8),
then the raw little-endian tensor bytes. Debian's PyTorch ships without the `safetensors`
package, and the format is small enough to write by hand: this file is the reference for
docs/FORMATS.md's "export by hand" section.
"""
import json
import os
import struct
import tempfile

import numpy as np

_DTYPES = {
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int8"): "I8",
    np.dtype("int32"): "I32",
    np.dtype("uint8"): "U8",
}
_NP = {v: k for k, v in _DTYPES.items()}


def save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (C-contiguous, little-endian); metadata: dict str -> str."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if getattr(t, "dtype_tag", None) == "T2":  # ternary.Packed: logical shape, packed uint32 words
            raw = t.tobytes()
            header[name] = {"dtype": "T2", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
            blobs.append(raw)
            offset += len(raw)
            continue
        a = np.ascontiguousarray(t)
        if a.dtype not in _DTYPES:
            raise ValueError(f"{name}: unsupported dtype {a.dtype}")
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for raw in blobs:
                f.write(raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path):
    """Returns (dict name -> numpy array, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        if e["dtype"] == "T2":  # packed ternary: returned as int8 values in {-1, 0, 1} of the logical shape
            import ternary
            out[name] = ternary.unpack(np.frombuffer(data[base + b:base + end], dtype="<u4"), e["shape"])
            continue
        out[name] = np.frombuffer(data[base + b:base + end], dtype=_NP[e["dtype"]].newbyteorder("<")).reshape(e["shape"]).copy()
    return out, meta
