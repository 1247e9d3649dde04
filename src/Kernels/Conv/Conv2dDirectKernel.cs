using ILGPU;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// The simple Conv2d kernel: one thread per output element, implicitly grouped. It reads the
/// definition off <see cref="Conv2dReference"/> line for line (in float32) and is what
/// <see cref="Conv2dImplicitGemmKernel"/> is checked against on the GPU. It is also the faster
/// kernel when the per-group GEMM is degenerate (depthwise): consecutive threads are
/// consecutive output columns of one channel, so input reads coalesce and weight reads broadcast.
/// </summary>
internal static class Conv2dDirectKernel
{
    public static void Kernel(Index1D index, Conv2dParams p, ArrayView<float> x, ArrayView<float> w,
        ArrayView<float> bias, ArrayView<float> y)
    {
        int i = index;
        int oh = p.OutH, ow = p.OutW, cig = p.CInPerGroup;
        int ox = i % ow;
        int t = i / ow;
        int oy = t % oh;
        t /= oh;
        int co = t % p.COut;
        int n = t / p.COut;
        int g = co / p.COutPerGroup;

        int iy0 = oy * p.StrideH - p.PadTop;
        int ix0 = ox * p.StrideW - p.PadLeft;
        int hw = p.H * p.W;
        int xChannel = (n * p.CIn + g * cig) * hw;
        int wRow = co * cig * p.KH * p.KW;
        float acc = 0f;
        for (int ci = 0; ci < cig; ci++)
        {
            for (int ky = 0; ky < p.KH; ky++)
            {
                int iy = iy0 + ky * p.DilH;
                if ((uint)iy >= (uint)p.H) continue;
                int xRow = xChannel + iy * p.W;
                int wk = wRow + ky * p.KW;
                for (int kx = 0; kx < p.KW; kx++)
                {
                    int ix = ix0 + kx * p.DilW;
                    if ((uint)ix < (uint)p.W)
                        acc += x[xRow + ix] * w[wk + kx];
                }
            }
            xChannel += hw;
            wRow += p.KH * p.KW;
        }
        if (p.HasBias != 0) acc += bias[co];
        y[i] = Activate(acc, p.Act, p.Slope);
    }

    /// <summary>The fused epilogue activation, as <see cref="Conv2dReference.Activate"/> defines it.</summary>
    public static float Activate(float v, Activation act, float slope) =>
        act == Activation.Relu ? (v > 0f ? v : 0f)
        : act == Activation.LeakyRelu ? (v >= 0f ? v : v * slope)
        : v;
}
