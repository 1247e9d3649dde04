"""Golden fixture for the ternary parity tests: the small Uninformed Students fixture model with a MIX of float and
ternary layers, quantized by tools/export/ternary.py, and PyTorch's maps for it.

    teacher layers 1.. : per-tensor gamma, A32      (regex ^teacher\\..*layers\\.[1-9])
    student layers 1.. : per-row gamma,   A8        (regex ^students\\..*layers\\.[1-9])
    every layers.0     : float (the first conv stays float)

The C# tests check (a) that `gpuanomaly quantize` (TernaryFileQuantizer) with the same regexes and options writes the same
T2 words and scales bit for bit, and (b) that the engine reproduces these maps.

Regenerate (repo root, a few seconds):
    /usr/bin/python3 tools/export/export_ternary_fixture.py
Writes tests/GpuAnomaly.Tests/Fixtures/uninformed_students_small_ternary.safetensors (the model) and
uninformed_students_ternary_golden.safetensors: input [2, 1, 28, 28] (the float fixture's), p{P}.score, map [2, 28, 28], image [2];
the same for the fixture's 7 x 9 crop under the prefix small.
"""
import os
import re

import numpy as np
import torch

import safetensors_io
import students
import ternary

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "GpuAnomaly.Tests", "Fixtures")
PASSES = [(r"^teacher\..*layers\.[1-9]", False, "a32"), (r"^students\..*layers\.[1-9]", True, "a8")]


def main():
    tensors, meta = safetensors_io.load(os.path.join(FIX, "uninformed_students_small.safetensors"))
    meta = dict(meta)
    names = []
    for regex, per_row, act in PASSES:
        tensors, n = ternary.quantize_tensors(tensors, re.compile(regex), per_row, act, meta)
        names += n
    model_path = os.path.join(FIX, "uninformed_students_small_ternary.safetensors")
    safetensors_io.save(model_path, tensors, meta)
    print(f"{len(names)} ternary layers -> {model_path}")

    golden, _ = safetensors_io.load(os.path.join(FIX, "uninformed_students_golden.safetensors"))
    x = torch.from_numpy(golden["input"])
    model = students.UninformedStudents.from_file(model_path)
    out = model.score(x)
    g = {"input": golden["input"], "map": out["map"].numpy(), "image": out["image"].numpy()}
    for p in model.scales:
        g[f"p{p}.score"] = out[p]["score"].numpy()
    g = {k: np.ascontiguousarray(v, np.float32) for k, v in g.items()}
    safetensors_io.save(os.path.join(FIX, "uninformed_students_ternary_golden.safetensors"), g,
                        {"model": "uninformed_students_small_ternary.safetensors", "passes": repr(PASSES)})
    small = model.score(torch.from_numpy(golden["small.input"]))
    g["small.input"] = golden["small.input"]
    g["small.map"] = small["map"].numpy()
    g["small.image"] = small["image"].numpy()
    for p in model.scales:
        g[f"small.p{p}.score"] = small[p]["score"].numpy()
    g = {k: np.ascontiguousarray(v, np.float32) for k, v in g.items()}
    safetensors_io.save(os.path.join(FIX, "uninformed_students_ternary_golden.safetensors"), g,
                        {"model": "uninformed_students_small_ternary.safetensors", "passes": repr(PASSES)})
    float_out = students.UninformedStudents.from_file(os.path.join(FIX, "uninformed_students_small.safetensors")).score(x)
    print("image scores ternary", g["image"], "float", float_out["image"].numpy())


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
