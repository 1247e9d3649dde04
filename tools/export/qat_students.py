"""Ternary (1.58-bit) Uninformed Students: post-training quantization (PTQ) and quantization-aware fine-tuning (QAT).

    # PTQ of the student networks (what `gpuanomaly quantize --layers '^students'` writes, plus refitted statistics)
    nice -n 10 /usr/bin/python3 tools/export/qat_students.py --model src/Models/Default/uninformed_students_default.safetensors \
        --group students --scale row --activations a32 --steps 0 --out /tmp/us1_students_ptq.safetensors
    # QAT: the same, then 150 fine-tuning steps per scale with fake-quantized weights (straight-through estimator)
    ... --steps 150 --out /tmp/us1_students_qat.safetensors
    # QAT from scratch: the students re-initialized and trained ternary from the start (the teacher stays float)
    ... --group students --scale row --from-scratch --lr 1e-3 --steps 300 --out /tmp/us1_students_scratch.safetensors

Groups: `teacher` (every teacher conv), `students` (every student conv), `all`. `--keep-first` leaves each network's first
conv in float (BitNet keeps the input layer in high precision). What changes when the teacher is quantized: its
descriptors are the students' targets, so the teacher is quantized once (absmean, not trained: a self-supervised retraining
would change what "normal" means), mu/sigma are recomputed with the quantized teacher, and the students are fine-tuned
towards the new targets (float, or fake-quantized when they are in the group too). With --steps 0 only the statistics are
refitted (PTQ). The validation statistics are always refitted on the model's held-out normal images, exactly as
train_students.py does, so the comparison with the float model is fair. The output is written in the T2 format
(ternary.py, docs/FORMATS.md) and scores in the engine like any model.
"""
import argparse
import json
import re
import time

import torch

import fashion_mnist
import safetensors_io
import students
import ternary


def set_quant(net, per_row, a8, train, keep_first):
    """Fake quantization of the latent float weights in every forward pass; the export quantizes the same latent
    weights with the same absmean rule, so the file holds exactly what was trained and validated."""
    for i, layer in enumerate(net.layers):
        if isinstance(layer, torch.nn.Conv2d) and not (keep_first and i == 0):
            layer.quant = {"a8": a8, **({"per_row": per_row} if train else {})}


def finetune_students(sc, x, steps, batch, lr, seed, log):
    torch.manual_seed(seed + 200)
    gen = torch.Generator().manual_seed(seed + 201)
    opts = [torch.optim.Adam(s.parameters(), lr=lr) for s in sc.students]
    for s in sc.students:
        s.train()
    for step in range(steps):
        xb = x[torch.randint(0, x.shape[0], (batch,), generator=gen)]
        with torch.no_grad():
            y = students.normalized_teacher(sc.teacher, sc.mu, sc.sigma, xb)
        losses = []
        for s, opt in zip(sc.students, opts):
            loss = (s.dense(xb) - y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        if step % 50 == 0 or step == steps - 1:
            log(f"  fine-tune p={sc.teacher.p} step {step}: mse " + " ".join(f"{l:.4f}" for l in losses))
    for s in sc.students:
        s.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a float uninformed_students file")
    ap.add_argument("--out", required=True)
    ap.add_argument("--group", choices=["teacher", "students", "all"], required=True)
    ap.add_argument("--scale", choices=["tensor", "row"], default="tensor")
    ap.add_argument("--activations", choices=["a32", "a8"], default="a32")
    ap.add_argument("--keep-first", action="store_true")
    ap.add_argument("--from-scratch", action="store_true", help="re-initialize the students before QAT (BitNet trains "
                    "ternary from the start) instead of fine-tuning the float ones; use the float training's --lr 1e-3")
    ap.add_argument("--steps", type=int, default=150, help="fine-tuning steps per scale (0 = PTQ)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--val", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    model = students.UninformedStudents.from_file(a.model)
    k = model.config["normal_class"]
    images, labels = fashion_mnist.load("train")
    x = students.to_input(images[labels == k])
    x_train, x_val = x[:-a.val], x[-a.val:]
    per_row, a8 = a.scale == "row", a.activations == "a8"
    quant_teacher, quant_students = a.group in ("teacher", "all"), a.group in ("students", "all")
    if a.from_scratch and (not quant_students or a.steps <= 0):
        ap.error("--from-scratch re-initializes the students: it needs --group students or all and --steps > 0")
    log = lambda s: print(s, flush=True)  # noqa: E731
    for p, sc in model.scales.items():
        if quant_teacher:
            set_quant(sc.teacher, per_row, a8, True, a.keep_first)
            sc.mu, sc.sigma = students.teacher_stats(sc.teacher, x_train[:500])
        if quant_students:
            for j, s in enumerate(sc.students):
                if a.from_scratch:  # PyTorch's default init, a fresh seed per scale and student
                    torch.manual_seed(a.seed + 1000 * p + j)
                    for m in s.modules():
                        if isinstance(m, torch.nn.Conv2d):
                            m.reset_parameters()
                set_quant(s, per_row, a8, True, a.keep_first)
        if a.steps > 0:
            finetune_students(sc, x_train, a.steps, a.batch, a.lr, a.seed, log)
        log(f"  p={p} validation {sc.fit_validation(x_val)}")

    tensors = model.tensors()
    meta = model.metadata(json.loads(safetensors_io.load(a.model)[1].get("provenance", "{}")) | {
        "ternary": {"source": a.model, "group": a.group, "scale": a.scale, "activations": a.activations,
                    "keep_first": a.keep_first, "from_scratch": a.from_scratch, "finetune_steps": a.steps, "lr": a.lr, "seconds": round(time.time() - t0, 1)}})
    pattern = {"teacher": r"^teacher\.", "students": r"^students\.", "all": r"."}[a.group]
    if a.keep_first:
        pattern += r".*layers\.[1-9]"
    tensors, names = ternary.quantize_tensors(tensors, re.compile(pattern), per_row, a.activations, meta)
    safetensors_io.save(a.out, tensors, meta)
    print(f"{len(names)} ternary layers ({a.group}, scale {a.scale}, {a.activations}, {a.steps} fine-tuning steps) -> {a.out} "
          f"in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
