#!/usr/bin/env python3
"""Independent numpy implementation of the ViM score (haoqiwang/vim benchmark.py; METHODS.md section 2),
and the fixture the C# parity test reads (tests/GpuAnomaly.Tests/Fixtures/vim_fixture.safetensors).

    python3 tools/export/check_vim.py write  [PATH]   # draws seeded random data, scores it, writes PATH
    python3 tools/export/check_vim.py verify [PATH]   # recomputes the scores from PATH's inputs and compares

Formulas (float64, from the float32 tensors stored in the file):
    o = -pinv(W) b;  Sigma = (x - o)^T (x - o) / S  (uncentered);  eigh(Sigma), eigenvalues descending
    D = 1000 if N >= 2048, 512 if N >= 768, else N // 2;  R = eigenvectors beyond the top D
    r = ||(x - o) R||;  alpha = mean(max_j l_j) / mean(r) over the training features
    ViM score = alpha r - logsumexp(l)   (larger = OOD; benchmark.py's score_id is its negation)
    ViM probability = softmax([l, alpha r])[-1]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "GpuAnomaly.Tests", "Fixtures",
                       "vim_fixture.safetensors")


def principal_dim(n):
    return 1000 if n >= 2048 else 512 if n >= 768 else n // 2


def logsumexp(a):
    m = a.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))[..., 0]


def vim(train, test, w, b, dim):
    train, test, w, b = (t.astype(np.float64) for t in (train, test, w, b))
    u = -np.linalg.pinv(w) @ b
    xc = train - u
    cov = xc.T @ xc / len(train)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(-vals)
    ns = vecs[:, order[dim:]]
    logit_train = train @ w.T + b
    alpha = logit_train.max(axis=-1).mean() / np.linalg.norm(xc @ ns, axis=-1).mean()
    logits = test @ w.T + b
    r = np.linalg.norm((test - u) @ ns, axis=-1)
    energy = logsumexp(logits)
    virt = alpha * r
    prob = np.exp(virt - logsumexp(np.concatenate([logits, virt[:, None]], axis=-1)))
    msp = np.exp(logits.max(axis=-1) - energy)
    return dict(origin=u, alpha=alpha, residual=r, vim_score=virt - energy, vim_probability=prob, energy=energy,
                max_logit=logits.max(axis=-1), msp=msp)


def write(path):
    rng = np.random.default_rng(6)
    n, c, s_train, s_test = 64, 10, 300, 50
    # Features with a principal structure (rank-12 signal plus small isotropic noise, positive like ReLU outputs).
    basis = rng.normal(size=(12, n))
    def draw(s, noise):
        return np.abs(rng.normal(size=(s, 12)) @ basis * 0.5 + noise * rng.normal(size=(s, n))).astype(np.float32)
    train = draw(s_train, 0.2)
    test = np.concatenate([draw(s_test - 10, 0.2), draw(10, 1.5)]).astype(np.float32)  # the last ten: more residual
    w = (rng.normal(size=(c, n)) / np.sqrt(n)).astype(np.float32)
    b = rng.normal(size=c).astype(np.float32)
    dim = principal_dim(n)
    out = vim(train, test, w, b, dim)
    tensors = {"train_features": train, "test_features": test, "weight": w, "bias": b}
    for k in ("origin", "residual", "vim_score", "vim_probability", "energy", "max_logit", "msp"):
        tensors[k] = out[k].astype(np.float32)
    meta = {"alpha": repr(float(out["alpha"])), "principal_dim": str(dim),
            "note": "ViM parity fixture written by tools/export/check_vim.py (numpy float64, official formula)"}
    safetensors_io.save(path, tensors, meta)
    print(f"wrote {path}: N={n} C={c} train={s_train} test={s_test} D={dim} alpha={out['alpha']:.6f} "
          f"({os.path.getsize(path)} bytes)")


def verify(path):
    t, meta = safetensors_io.load(path)
    out = vim(t["train_features"], t["test_features"], t["weight"], t["bias"], int(meta["principal_dim"]))
    worst = 0.0
    for k in ("origin", "residual", "vim_score", "vim_probability", "energy", "max_logit", "msp"):
        err = np.linalg.norm(out[k] - t[k]) / np.linalg.norm(out[k])
        worst = max(worst, err)
        print(f"{k:16s} rel L2 {err:.2e}")
    a = float(meta["alpha"])
    print(f"alpha {out['alpha']:.9f} vs stored {a:.9f}")
    ok = worst <= 1e-6 and abs(out["alpha"] - a) <= 1e-9 * abs(a)
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "verify"
    path = sys.argv[2] if len(sys.argv) > 2 else DEFAULT
    if mode == "write":
        write(path)
    else:
        sys.exit(verify(path))
