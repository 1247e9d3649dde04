using ILGPU;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// The direct Conv2d with four adjacent outputs of a row per thread (implicitly grouped): the
/// kernel for depthwise and near-depthwise convs, where the per-group GEMM is degenerate.
/// Compared with <see cref="Conv2dDirectKernel"/> the index decomposition (five divisions),
/// the row bounds check and every weight load are paid once per four outputs instead of once
/// per output; the four input reads of a tap hit the same L1 lines. Thread i covers output
/// columns 4q..4q+3 of row oy, channel co, image n, with i = ((n * COut + co) * OutH + oy) * OWQ + q.
/// </summary>
internal static class Conv2dDirectWideKernel
{
    public const int Outputs = 4;

    public static void Kernel(Index1D index, Conv2dParams p, int owq, ArrayView<float> x, ArrayView<float> w,
        ArrayView<float> bias, ArrayView<float> y)
    {
        int i = index;
        int oh = p.OutH, ow = p.OutW, cig = p.CInPerGroup;
        int q = i % owq;
        int t = i / owq;
        int oy = t % oh;
        t /= oh;
        int co = t % p.COut;
        int n = t / p.COut;
        int g = co / p.COutPerGroup;

        int ox0 = q * Outputs;
        int iy0 = oy * p.StrideH - p.PadTop;
        int ix0 = ox0 * p.StrideW - p.PadLeft;
        int sw = p.StrideW;
        int hw = p.H * p.W;
        int xChannel = (n * p.CIn + g * cig) * hw;
        int wRow = co * cig * p.KH * p.KW;
        float acc0 = 0f, acc1 = 0f, acc2 = 0f, acc3 = 0f;
        for (int ci = 0; ci < cig; ci++)
        {
            for (int ky = 0; ky < p.KH; ky++)
            {
                int iy = iy0 + ky * p.DilH;
                if ((uint)iy >= (uint)p.H) continue;
                int xRow = xChannel + iy * p.W;
                int wk = wRow + ky * p.KW;
                int ix = ix0;
                for (int kx = 0; kx < p.KW; kx++)
                {
                    float wv = w[wk + kx];
                    if ((uint)ix < (uint)p.W) acc0 += x[xRow + ix] * wv;
                    if ((uint)(ix + sw) < (uint)p.W) acc1 += x[xRow + ix + sw] * wv;
                    if ((uint)(ix + 2 * sw) < (uint)p.W) acc2 += x[xRow + ix + 2 * sw] * wv;
                    if ((uint)(ix + 3 * sw) < (uint)p.W) acc3 += x[xRow + ix + 3 * sw] * wv;
                    ix += p.DilW;
                }
            }
            xChannel += hw;
            wRow += p.KH * p.KW;
        }
        float b = p.HasBias != 0 ? bias[co] : 0f;
        int yRow = ((n * p.COut + co) * oh + oy) * ow;
        y[yRow + ox0] = Conv2dDirectKernel.Activate(acc0 + b, p.Act, p.Slope);
        if (ox0 + 1 < ow) y[yRow + ox0 + 1] = Conv2dDirectKernel.Activate(acc1 + b, p.Act, p.Slope);
        if (ox0 + 2 < ow) y[yRow + ox0 + 2] = Conv2dDirectKernel.Activate(acc2 + b, p.Act, p.Slope);
        if (ox0 + 3 < ow) y[yRow + ox0 + 3] = Conv2dDirectKernel.Activate(acc3 + b, p.Act, p.Slope);
    }
}
