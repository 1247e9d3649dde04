using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// Channels-last depthwise convolution on an ILGPU accelerator: one thread per output element, channel fastest,
/// so a warp reads C-contiguous spans of each tap's input pixel (coalesced) and writes contiguously. Implicitly grouped.
/// </summary>
public sealed class DwConvGpu
{
    private readonly Action<Index1D, DwConvParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _kernel;

    public DwConvGpu(Accelerator accelerator) =>
        _kernel = accelerator.LoadAutoGroupedStreamKernel<Index1D, DwConvParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Kernel);

    /// <summary>Queues the convolution on the default stream; does not synchronize. bias may be default when p.HasBias == 0.</summary>
    public void Forward(in DwConvParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        p.CheckLengths(x.Length, w.Length, bias.Length, y.Length);
        _kernel((int)p.OutputElements, p, x, w, bias, y);
    }

    private static void Kernel(Index1D index, DwConvParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        int c = index % p.C, t = index / p.C;
        int ox = t % p.OutW; t /= p.OutW;
        int oy = t % p.OutH, b = t / p.OutH;
        float s = p.HasBias != 0 ? bias[c] : 0f;
        int wBase = c * p.KH * p.KW;
        for (int ky = 0; ky < p.KH; ky++)
        {
            int iy = oy - p.PadH + ky;
            if ((uint)iy >= (uint)p.H) continue;
            int rowBase = (b * p.H + iy) * p.W;
            for (int kx = 0; kx < p.KW; kx++)
            {
                int ix = ox - p.PadW + kx;
                if ((uint)ix >= (uint)p.W) continue;
                s += x[(rowBase + ix) * p.C + c] * w[wBase + ky * p.KW + kx];
            }
        }
        y[index] = p.Act == Epilogue.Gelu ? Gelu.Apply(s) : s;
    }
}
