"""Uninformed Students patch networks (Bergmann et al., CVPR 2020) and their dense extraction.

Layer tables from ../../../shared/METHODS.md section 1 (width-scalable): LeakyReLU(5e-3) after
every conv but the last, no padding inside. Dense extraction pads the input by p - 1
(ceil top/left, floor bottom/right) and replaces each 2x2/2 max-pool by a stride-1 pool,
dilating every later layer by the product of the strides so far. The raw dense output is
H x W, (H+1) x (W+1), (H+5) x (W+5) for p = 17, 33, 65; the first H x W is kept.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

SLOPE = 5e-3

# (kind, kernel, channels as a fraction of the width; None = descriptor dimension)
ARCH = {
    17: [("conv", 6, 1.0), ("conv", 5, 2.0), ("conv", 5, 2.0), ("conv", 4, None)],
    33: [("conv", 5, 1.0), ("pool", 2, None), ("conv", 5, 2.0), ("pool", 2, None), ("conv", 2, 2.0), ("conv", 4, None)],
    65: [("conv", 5, 1.0), ("pool", 2, None), ("conv", 5, 1.0), ("pool", 2, None), ("conv", 5, 1.0), ("pool", 2, None),
         ("conv", 4, 2.0), ("conv", 1, None)],
}
# Rows/columns of dense output beyond H x W (the true receptive fields are 17, 32, 60).
EXTRA = {17: 0, 33: 1, 65: 5}


class PatchNetwork(nn.Module):
    """Maps a p x p patch to a descriptor; `layers` indices match PyTorch state_dict names."""

    def __init__(self, p, in_channels=1, width=128, out_dim=128):
        super().__init__()
        self.p = p
        layers = []
        c = in_channels
        for kind, k, frac in ARCH[p]:
            if kind == "pool":
                layers.append(nn.MaxPool2d(2))
            else:
                cout = out_dim if frac is None else int(width * frac)
                layers.append(nn.Conv2d(c, cout, k))
                c = cout
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        """Patch-wise: [B, C, p, p] -> [B, out_dim, 1, 1] (the definition)."""
        convs = [i for i, l in enumerate(self.layers) if isinstance(l, nn.Conv2d)]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if isinstance(layer, nn.Conv2d) and i != convs[-1]:
                x = F.leaky_relu(x, SLOPE)
        return x

    def dense(self, x):
        """One descriptor per pixel: [B, C, H, W] -> [B, out_dim, H, W]."""
        h, w = x.shape[-2:]
        top = (self.p - 1 + 1) // 2
        # The rows/columns beyond H x W are never computed (as in the engine): the same output, and the
        # same intermediate maps, which matters for A8's per-image activation scales.
        bottom = (self.p - 1) // 2 - EXTRA[self.p]
        x = F.pad(x, (top, bottom, top, bottom))
        convs = [i for i, l in enumerate(self.layers) if isinstance(l, nn.Conv2d)]
        dil = 1
        for i, layer in enumerate(self.layers):
            if isinstance(layer, nn.MaxPool2d):
                x = F.max_pool2d(x, 2, stride=1, dilation=dil)
                dil *= 2
            else:
                weight = layer.weight
                # Ternary layers (ternary.py): layer.quant = {"a8": bool} for weights that already are gamma * W_t,
                # plus "per_row" for quantization-aware training (fake-quantized weights, straight-through gradient).
                quant = getattr(layer, "quant", None)
                if quant is not None:
                    import ternary
                    if "per_row" in quant:
                        weight = ternary.fake_weight(weight, quant["per_row"])
                    if quant["a8"]:
                        x = ternary.fake_a8(x)
                x = F.conv2d(x, weight, layer.bias, dilation=dil)
                if i != convs[-1]:
                    x = F.leaky_relu(x, SLOPE)
        assert x.shape[-2:] == (h, w), x.shape
        return x
