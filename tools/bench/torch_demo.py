"""Times PyTorch on the demo job (dense p = 17 and 33 patch networks on the bundled images),
as `gpuanomaly demo` times it: host input -> device, both scales, synchronise.

    python3 tools/bench/torch_demo.py --device cuda [--batch 2]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "export"))
import safetensors_io  # noqa: E402
from patchnet import PatchNetwork  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--tf32", action="store_true")
    a = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True
    weights, meta = safetensors_io.load(os.path.join(ROOT, "src/Models/Demo/patchnet_demo.safetensors"))
    golden, _ = safetensors_io.load(os.path.join(ROOT, "src/Models/Demo/patchnet_demo_golden.safetensors"))
    nets = {}
    for p in (17, 33):
        net = PatchNetwork(p, 1, 32, 128)
        net.load_state_dict({k[len(f"p{p}."):]: torch.from_numpy(v) for k, v in weights.items() if k.startswith(f"p{p}.")})
        nets[p] = net.to(a.device).eval()
    x = golden["input"]
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    with torch.no_grad():
        for p, net in nets.items():
            out = net.dense(torch.from_numpy(x).to(a.device)).cpu().numpy()
            ref = golden[f"p{p}.dense"]
            print(f"p{p}: rel L2 vs fixture {np.linalg.norm(out - ref) / np.linalg.norm(ref):.2e}")

        def run():
            t = torch.from_numpy(x).to(a.device)
            for net in nets.values():
                net.dense(t)
            sync()
        for _ in range(5):
            run()
        times = []
        for _ in range(a.repeat):
            s = time.perf_counter()
            run()
            times.append((time.perf_counter() - s) * 1e3)
    med = statistics.median(times)
    print(f"torch {torch.__version__} {a.device}{' tf32' if a.tf32 else ''}: median {med:.2f} ms = {x.shape[0] * 1000 / med:.1f} images/s")


if __name__ == "__main__":
    main()
