"""Checks that dense extraction equals the patch network on the p x p patch centred on each pixel."""
import torch
import torch.nn.functional as F

from patchnet import PatchNetwork


def main():
    torch.manual_seed(0)
    for p in (17, 33, 65):
        net = PatchNetwork(p, in_channels=2, width=8, out_dim=16).double()
        x = torch.randn(2, 2, 11, 9, dtype=torch.float64)
        dense = net.dense(x)
        top = (p - 1 + 1) // 2
        xp = F.pad(x, (top, (p - 1) // 2, top, (p - 1) // 2))
        worst = 0.0
        for r in range(x.shape[2]):
            for c in range(x.shape[3]):
                d = net(xp[:, :, r:r + p, c:c + p])[:, :, 0, 0]
                worst = max(worst, (d - dense[:, :, r, c]).abs().max().item())
        print(f"p={p}: max |dense - patchwise| = {worst:.2e}")
        assert worst < 1e-7, p


if __name__ == "__main__":
    main()
