"""Markdown rows for docs/PERFORMANCE.md from `gpuanomaly bench --json` and tools/bench/torch_kernels.py --json.

    python3 tools/bench/perf_table.py docs/perf/h100_bench.json docs/perf/h100_torch_fp32.json docs/perf/h100_torch_tf32.json
"""
import json
import sys


def main():
    ours = json.load(open(sys.argv[1]))
    torch = [json.load(open(p)) for p in sys.argv[2:]]
    peak_f, peak_b = ours["peaks"]["Fp32GFlops"], ours["peaks"]["CopyGBps"]
    ref = {}  # (op, shape) -> {"fp32": ms, "tf32": ms}; only convolutions differ under TF32
    for t in torch:
        for r in t["rows"]:
            op = r["kernel"].removeprefix("torch.").removesuffix("+tf32")
            mode = "tf32" if r["kernel"].endswith("+tf32") else "fp32"
            ref.setdefault((op, r["shape"]), {}).setdefault(mode, r["ms"])
    print("| kernel | shape | ms | GFLOP/s | % FMA peak | GB/s | % copy BW | torch fp32 ms | torch tf32 ms | speed-up vs torch fp32 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in ours["results"]:
        t = ref.get((r["Kernel"].split(".")[0], r["Shape"]), {})
        fp32, tf32 = t.get("fp32"), t.get("tf32")
        ms = r["MedianMs"]
        gf = r["Flops"] / ms / 1e6
        gb = r["Bytes"] / ms / 1e6
        f = lambda v: f"{v:.4f}" if v is not None else "not measured"
        speed = f"{fp32 / ms:.2f}x" if fp32 else "-"
        print(f"| {r['Kernel']} | {r['Shape']} | {ms:.4f} | {gf:.0f} | {100 * gf / peak_f:.1f} | {gb:.0f} | {100 * gb / peak_b:.1f} | {f(fp32)} | {f(tf32) if r['Kernel'].startswith('conv') else '-'} | {speed} |")


if __name__ == "__main__":
    main()
