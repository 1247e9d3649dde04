#!/usr/bin/env python3
"""ONNX exports of our models, from their PyTorch reference modules, for the ONNX Runtime side-by-side bench.

Writes one ONNX file per (model, batch, image size): torch.onnx.export of the reference module (students.py /
window_vit.py) wrapped so that its inputs and outputs are named exactly as the engine's graph names them, opset 17,
do_constant_folding=True, fixed shapes (batch and image size baked into the file, no dynamic axes). The graph is the
plain trace of the reference code, not simplified for either runtime. After exporting it checks the file
(onnx.checker.check_model) and prints the file, its size, input/output names and shapes, the opset and the op-type
histogram. Each export also runs the wrapper in PyTorch on a fixed input (torch.manual_seed(1), uniform [0, 1)) and
prints the sum of every output, so a run can be reproduced, and compares the wrapper against the reference API on
that input (relative L2, must be <= 1e-6). Where the exporter leaves an output's dims symbolic (uninformed_students:
torch 1.13 does not constant-fold the pads F.pad computes), the file's output shapes are set to the traced ones.

    # one file (the architecture comes from the safetensors __metadata__)
    /usr/bin/python3 tools/export/export_onnx.py --model FILE.safetensors --out FILE.onnx --batch B [--size S]
    # everything tools/bench/onnx_vs_ort.sh (bench/GpuAnomaly.Bench/OnnxSideBySide.cs) needs, plus DIR/manifest.json
    /usr/bin/python3 tools/export/export_onnx.py --all /tmp/onnx_models

Architectures (names as in the engine's graphs, so ONNX Runtime's outputs can be matched to ours by name):
- uninformed_students (students.py; the engine: src/Models/StudentTeacher/StudentTeacherModel.cs): input `image`
  [B, C, H, W] float32 (pixel / 255); one output per scale p of the config, in the config's order, named
  `p{p}.score` (StudentTeacherModel.ScaleOutput), shape [B, H, W] (no channel axis: the engine's student_teacher_score
  op writes [N, H, W], row-major, which is this tensor's element order): the per-scale score
  (e - e_mean)/e_std + (v - v_mean)/v_std computed by Scale.maps (dense teacher and M students, y = (T - mu)/sigma,
  e = ||mbar - y||^2, v = mean_i ||m_i||^2 - ||mbar||^2). The multi-scale map and the image score are not outputs:
  the engine takes them on the host from these maps. H x W: the config's input_size, or S x S with --size S.
- window_vit (window_vit.py; the engine: src/Models/WindowVit/WindowVitModel.cs): input `image` [B, C, H, W] float32
  (pixel / 255), outputs `feature` [B, embed_dim] (the mean of the final LayerNorm's tokens) and `logits`
  [B, num_classes], in that order (the engine's graph declares them so; the reference's forward returns
  (logits, feature)). The image size is the config's image_size (the engine builds no other): --size is refused.

--all DIR writes us_default_b1/_b8.onnx (src/Models/Default/uninformed_students_default.safetensors, its 28 x 28),
us_w128_c3.safetensors (tools/bench/students_model.py export --in-channels 3 --width 128 --seed 0: random weights) with
us_w128_c3_s64_b1.onnx and us_w128_c3_s256_b1.onnx, window_vit_b1/_b64.onnx
(src/Models/Default/window_vit_fmnist.safetensors) and manifest.json: a list of {"onnx": file name in DIR, "model":
absolute path of the safetensors file, "batch", "height", "width", "channels", "architecture", "inputs": {name: shape},
"outputs": {name: shape}}. PyTorch runs on one thread (torch.set_num_threads(1)).
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402
from students import UninformedStudents  # noqa: E402
from window_vit import WindowViT  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_DIR = os.path.join(REPO, "src", "Models", "Default")
US_DEFAULT = os.path.join(DEFAULT_DIR, "uninformed_students_default.safetensors")
VIT_DEFAULT = os.path.join(DEFAULT_DIR, "window_vit_fmnist.safetensors")
STUDENTS_MODEL = os.path.join(REPO, "tools", "bench", "students_model.py")
OPSET = 17
INPUT = "image"  # StudentTeacherModel.Load / WindowVitModel.Load: g.Input("image", ...)
TOLERANCE = 1e-6


class StudentsScores(nn.Module):
    """Uninformed Students: image [B, C, H, W] -> one score map [B, H, W] per scale (config order), Scale.maps."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.scale_list = list(model.scales)
        # Registered so the networks' weights are the module's parameters (named ONNX initializers, eval mode).
        self.nets = nn.ModuleDict()
        for p, sc in model.scales.items():
            self.nets[f"teacher_p{p}"] = sc.teacher
            for i, s in enumerate(sc.students):
                self.nets[f"student{i}_p{p}"] = s

    def output_names(self):
        return [f"p{p}.score" for p in self.scale_list]  # StudentTeacherModel.ScaleOutput(p)

    def forward(self, image):
        return tuple(self.model.scales[p].maps(image)[2] for p in self.scale_list)

    @torch.no_grad()
    def reference(self, image):
        """The same maps through the reference API, UninformedStudents.score (one batch)."""
        out = self.model.score(image, batch=image.shape[0])
        return tuple(out[p]["score"] for p in self.scale_list)


class WindowVitOutputs(nn.Module):
    """window_vit: image [B, C, H, W] -> (feature [B, C_embed], logits [B, classes]), the engine's output order."""

    def __init__(self, vit):
        super().__init__()
        self.vit = vit

    def output_names(self):
        return ["feature", "logits"]  # WindowVitModel.FeatureOutput, LogitsOutput

    def forward(self, image):
        logits, feature = self.vit(image)
        return feature, logits

    @torch.no_grad()
    def reference(self, image):
        logits, feature = self.vit(image)
        return feature, logits


def load(model_path, size):
    """-> (wrapper module in eval mode, input shape [B-less C, H, W], architecture)."""
    _, meta = safetensors_io.load(model_path)
    arch = meta.get("architecture")
    cfg = json.loads(meta.get("config", "{}"))
    if arch == "uninformed_students":
        model = UninformedStudents.from_file(model_path)
        h, w = (size, size) if size else tuple(cfg["input_size"])
        return StudentsScores(model).eval(), (cfg["in_channels"], h, w), arch
    if arch == "window_vit":
        if size:
            raise SystemExit(f"{model_path}: --size is not supported for window_vit (the image size is fixed by its config, "
                             f"{cfg['image_size']})")
        if json.loads(meta.get("ternary", "{}")):
            raise SystemExit(f"{model_path}: ternary window_vit files are not supported (WindowViT.from_file loads float weights)")
        vit, _ = WindowViT.from_file(model_path)
        h, w = cfg["image_size"]
        return WindowVitOutputs(vit).eval(), (cfg["in_channels"], h, w), arch
    raise SystemExit(f"{model_path}: architecture {arch!r} is not exported (uninformed_students, window_vit)")


def relative_l2(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


def onnx_shapes(values):
    return {v.name: [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in values}


def export(model_path, out, batch, size=None):
    """Exports one file; prints the checks and the summary; returns the manifest entry."""
    import onnx  # noqa: PLC0415 (imported late: the message below names the package if it is missing)

    t0 = time.time()
    model_path = os.path.abspath(model_path)
    wrapper, (c, h, w), arch = load(model_path, size)
    names = wrapper.output_names()
    print(f"== {os.path.basename(out)}: {arch} {model_path}, input {INPUT} [{batch}, {c}, {h}, {w}]", flush=True)

    torch.manual_seed(1)
    x = torch.rand(batch, c, h, w)
    with torch.no_grad():
        outs = wrapper(x)
        ref = wrapper.reference(x)
    for name, o, r in zip(names, outs, ref):
        err = relative_l2(o, r)
        print(f"  torch {name} {list(o.shape)}: sum {float(o.double().sum()):.6f}, "
              f"relative L2 vs the reference {err:.2e}", flush=True)
        if not err <= TOLERANCE:
            raise SystemExit(f"{name}: the wrapper differs from the reference by relative L2 {err:.2e} > {TOLERANCE}")

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(wrapper, (x,), out, opset_version=OPSET, do_constant_folding=True,
                          input_names=[INPUT], output_names=names, export_params=True)

    m = onnx.load(out)
    # The exporter leaves an output's dims symbolic where its shape inference cannot see through a computed shape
    # (F.pad's pads are built by a Slice with step -1 that torch 1.13 does not constant-fold, so nothing after the Pad
    # of uninformed_students has a known shape). The shapes are fixed by the input: write the traced ones.
    filled = []
    for v, o in zip(m.graph.output, outs):
        dims = v.type.tensor_type.shape.dim
        if len(dims) != o.dim() or any(not d.HasField("dim_value") for d in dims):
            del dims[:]
            for n in o.shape:
                dims.add().dim_value = int(n)
            filled.append(v.name)
    if filled:
        onnx.save(m, out)
    onnx.checker.check_model(m, full_check=True)
    inputs = onnx_shapes(m.graph.input)
    outputs = onnx_shapes(m.graph.output)
    expect_out = [[batch, h, w]] * len(names) if arch == "uninformed_students" else [list(o.shape) for o in outs]
    if list(inputs) != [INPUT] or inputs[INPUT] != [batch, c, h, w] or list(outputs) != names \
            or list(outputs.values()) != expect_out:
        raise SystemExit(f"{out}: unexpected inputs {inputs} / outputs {outputs}")
    opset = {o.domain or "ai.onnx": o.version for o in m.opset_import}
    hist = collections.Counter(n.op_type for n in m.graph.node)
    print(f"  wrote {out}: {os.path.getsize(out):,} bytes ({os.path.getsize(out) / 2**20:.1f} MiB), "
          f"checker ok, opset {opset}, {len(m.graph.node)} nodes, {len(m.graph.initializer)} initializers")
    print(f"  inputs  {inputs}")
    if filled:
        print(f"  (output shapes the exporter left symbolic, set from the traced outputs: {', '.join(filled)})")
    print(f"  outputs {outputs}")
    print("  ops     " + ", ".join(f"{k} {v}" for k, v in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))))
    print(f"  {time.time() - t0:.1f} s", flush=True)
    return {"onnx": os.path.basename(out), "model": model_path, "batch": batch, "height": h, "width": w,
            "channels": c, "architecture": arch, "inputs": inputs, "outputs": outputs}


def export_all(directory):
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    w128 = os.path.join(directory, "us_w128_c3.safetensors")
    cmd = [sys.executable, STUDENTS_MODEL, "export", "--out", w128, "--in-channels", "3", "--width", "128", "--seed", "0"]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    jobs = [
        ("us_default_b1.onnx", US_DEFAULT, 1, None),
        ("us_default_b8.onnx", US_DEFAULT, 8, None),
        ("us_w128_c3_s64_b1.onnx", w128, 1, 64),
        ("us_w128_c3_s256_b1.onnx", w128, 1, 256),
        ("window_vit_b1.onnx", VIT_DEFAULT, 1, None),
        ("window_vit_b64.onnx", VIT_DEFAULT, 64, None),
    ]
    t0 = time.time()
    manifest = [export(model, os.path.join(directory, name), batch, size) for name, model, batch, size in jobs]
    path = os.path.join(directory, "manifest.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(manifest)} models in {time.time() - t0:.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a .safetensors model file (uninformed_students or window_vit)")
    ap.add_argument("--out", help="the .onnx file to write")
    ap.add_argument("--batch", type=int, help="the batch size baked into the file")
    ap.add_argument("--size", type=int, help="uninformed_students only: S x S images instead of the config's input_size")
    ap.add_argument("--all", metavar="DIR", help="write every file the ONNX Runtime bench needs, and manifest.json, into DIR")
    a = ap.parse_args()
    torch.set_num_threads(1)
    try:
        import onnx  # noqa: F401, PLC0415
    except ImportError:
        raise SystemExit("the onnx package is missing: apt-get install -y python3-onnx")
    if a.all:
        if a.model or a.out or a.batch or a.size:
            ap.error("--all takes no --model, --out, --batch or --size")
        export_all(a.all)
        return
    if not (a.model and a.out and a.batch):
        ap.error("--model, --out and --batch are required (or --all DIR)")
    if a.batch < 1 or (a.size is not None and a.size < 1):
        ap.error("--batch and --size must be positive")
    export(a.model, a.out, a.batch, a.size)


if __name__ == "__main__":
    main()
