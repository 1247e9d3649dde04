#!/usr/bin/env python3
"""FAISS IndexFlatL2 on the same .npy files as `GpuAnomaly.Bench knn-cpu` (bench/GpuAnomaly.Bench/KnnBench.cs), and the
helpers tools/bench/knn_vs_faiss.sh uses around it.

    knn_faiss.py gen --out DIR                    # queries/banks of the benchmarked shapes, uniform [0, 1), seeded
    knn_faiss.py search --queries Q.npy --bank B.npy --k 9 --threads 1 [--reps 10] [--out PREFIX]
    knn_faiss.py check --queries Q.npy --bank B.npy --ours P1 --faiss P2
    knn_faiss.py table RESULTS.txt                # the markdown table from the RESULT lines of both sides

Timing protocol as the C# quick mode (bench/GpuAnomaly.Bench/QuickTimer.cs): warm up for half a second, then time
`reps` single searches, report the median and the minimum. The timed part is index.search alone (the index, and with
it the bank's norms, is built before). Run with OpenBLAS tuning variables unset (FAISS uses sgemm for 20 queries or
more), OMP_NUM_THREADS set to the thread count and OPENBLAS_NUM_THREADS to 1 (FAISS's fastest setting here: FAISS
1.7.3 calls sgemm outside its OpenMP regions, and the pthread OpenBLAS's own threads, spinning beside OpenMP's on 2
cores, made 2-thread searches 2x slower than 1-thread ones), as knn_vs_faiss.sh does:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2 taskset -c 0,1 \\
        /usr/bin/python3 tools/bench/knn_faiss.py search --threads 2 ...
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

import numpy as np

# (name, Q, N, D): the banks are shared between shapes of the same N and D.
SHAPES = [("q784_n100000_d128", 784, 100000, 128), ("q1_n1000000_d128", 1, 1000000, 128)]


def gen(args):
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for name, q, n, d in SHAPES:
        qp, bp = os.path.join(args.out, f"{name}.queries.npy"), os.path.join(args.out, f"{name}.bank.npy")
        if os.path.exists(qp) and os.path.exists(bp):
            continue
        np.save(qp, rng.random((q, d), dtype=np.float32))
        np.save(bp, rng.random((n, d), dtype=np.float32))
        print(f"wrote {qp} {bp} (uniform [0, 1), seed {args.seed})")


def blas_info():
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return f"{lib.openblas_get_config().decode()}, core {lib.openblas_get_corename().decode()}, " \
               f"{lib.openblas_get_num_threads()} BLAS threads"
    except OSError:
        return "no libopenblas.so.0 loaded"


def search(args):
    import faiss
    faiss.omp_set_num_threads(args.threads)
    xq, xb = np.load(args.queries), np.load(args.bank)
    q, d = xq.shape
    n = xb.shape[0]
    index = faiss.IndexFlatL2(d)
    index.add(xb)
    run = lambda: index.search(xq, args.k)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.warmup_ms / 1e3:
        run()
    times = []
    for _ in range(args.reps):
        t = time.perf_counter()
        dist, idx = run()
        times.append((time.perf_counter() - t) * 1e3)
    ms = statistics.median(times)
    flops = 2.0 * q * n * d
    print(f"knn cpu (faiss {faiss.__version__} IndexFlatL2), Q={q} N={n} D={d} k={args.k}, omp threads "
          f"{faiss.omp_get_max_threads()}, blas_threshold {faiss.cvar.distance_compute_blas_threshold}, {blas_info()}, "
          f"median of {args.reps}")
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "?")
    print(f"RESULT faiss Q={q} N={n} D={d} k={args.k} threads={args.threads} blas_threads={blas} median_ms={ms:.3f} min_ms={min(times):.3f} "
          f"gflops={flops / ms / 1e6:.1f}")
    if args.out:
        np.save(args.out + ".indices.npy", idx.astype(np.int32))
        np.save(args.out + ".distances.npy", dist.astype(np.float32))


def check(args):
    """Distances rel. L2 <= 1e-5; indices equal, or else a near-tie: both picks' exact (float64) distances agree."""
    xq, xb = np.load(args.queries).astype(np.float64), np.load(args.bank).astype(np.float64)
    oi, od = np.load(args.ours + ".indices.npy"), np.load(args.ours + ".distances.npy").astype(np.float64)
    fi, fd = np.load(args.faiss + ".indices.npy"), np.load(args.faiss + ".distances.npy").astype(np.float64)
    rel = np.linalg.norm(od - fd) / np.linalg.norm(fd)
    mism = np.argwhere(oi != fi)
    bad = 0
    worst_tie = 0.0
    for qi, j in mism:
        a = ((xq[qi] - xb[oi[qi, j]]) ** 2).sum()
        b = ((xq[qi] - xb[fi[qi, j]]) ** 2).sum()
        gap = abs(a - b) / max(abs(b), 1e-30)
        worst_tie = max(worst_tie, gap)
        if gap > 1e-5:
            bad += 1
    ok = rel <= 1e-5 and bad == 0
    print(f"CHECK {'ok' if ok else 'FAIL'}: distances rel L2 {rel:.2e}, {len(mism)} of {oi.size} indices differ "
          f"(near-ties, largest exact-distance gap {worst_tie:.1e}), {bad} real mismatches")
    return 0 if ok else 1


def table(args):
    rows = {}
    for line in open(args.results):
        if not line.startswith("RESULT "):
            continue
        f = line.split()
        kv = dict(x.split("=") for x in f[2:])
        key = (int(kv["Q"]), int(kv["N"]), int(kv["D"]), int(kv["k"]), int(kv["threads"]))
        side = f[1] if f[1] == "ours" else "faiss" if kv["blas_threads"] == "1" else "faiss_blas"
        rows.setdefault(key, {"ours": [], "faiss": [], "faiss_blas": []})[side].append(
            (float(kv["median_ms"]), float(kv["min_ms"])))
    print("| shape (Q x N x D) | k | threads | ours ms (median, min) | FAISS ms (median, min) | ratio FAISS/ours | "
          "ours GFLOP/s | FAISS GFLOP/s | FAISS ms with OpenBLAS threads = threads |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (q, n, d, k, t), r in sorted(rows.items(), key=lambda kv: (kv[0][4], -kv[0][0], kv[0][3])):
        # Each round is one process with its own median; the table takes the median of the rounds' medians.
        med = lambda side: statistics.median(x[0] for x in r[side])
        om, fm = med("ours"), med("faiss")
        omin, fmin = min(x[1] for x in r["ours"]), min(x[1] for x in r["faiss"])
        fb = f"{med('faiss_blas'):.2f}" if r["faiss_blas"] else "(same)"
        fl = 2.0 * q * n * d
        print(f"| {q} x {n} x {d} | {k} | {t} | {om:.2f} ({omin:.2f}) | {fm:.2f} ({fmin:.2f}) | {fm / om:.2f}x | "
              f"{fl / om / 1e6:.0f} | {fl / fm / 1e6:.0f} | {fb} |")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("search")
    s.add_argument("--queries", required=True)
    s.add_argument("--bank", required=True)
    s.add_argument("--k", type=int, default=9)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--reps", type=int, default=10)
    s.add_argument("--warmup-ms", type=int, default=500)
    s.add_argument("--out")
    c = sub.add_parser("check")
    for a in ("--queries", "--bank", "--ours", "--faiss"):
        c.add_argument(a, required=True)
    t = sub.add_parser("table")
    t.add_argument("results")
    args = ap.parse_args()
    sys.exit({"gen": gen, "search": search, "check": check, "table": table}[args.cmd](args) or 0)


if __name__ == "__main__":
    main()
