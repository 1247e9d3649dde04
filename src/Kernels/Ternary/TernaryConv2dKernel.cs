using System.Runtime.CompilerServices;
using GpuAnomaly.Kernels.Conv;
using ILGPU;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// Ternary Conv2d as an implicit GEMM, tiled like <see cref="Conv2dImplicitGemmKernel"/> (64 output
/// channels x 64 output pixels per group of 256 threads, K-step 16, im2col never materialized,
/// out-of-range rows/columns clamped for loading and dropped in the epilogue), except that the
/// K-step is exactly one packed word: each weight row's word is loaded once and decoded to
/// -1/0/+1 floats while it is stored into shared memory (4 codes per thread).
/// A8: x is the quantized input (int8 values held as floats, <see cref="TernaryQuantizeKernel"/>'s
/// plain layout); every product is then an integer of magnitude &lt;= 128 and every partial sum stays
/// below 2^24 when 128 K &lt; 2^24 (the launcher checks), so the float32 accumulation is the exact
/// int32 sum whatever the order or FMA contraction; y = acc * gamma / s[image] + bias.
/// Thread (ty, tx) owns channels ty + 16i and pixels tx + 16j: a warp's stores hit consecutive pixels.
/// Grid: X = pixel tiles (N*OutH*OutW), Y = channel tiles x conv groups.
/// </summary>
internal static class TernaryConv2dKernel
{
    public const int BM = 64, BN = 64, Threads = 256;
    private const int BK = TernaryPacking.WeightsPerWord;

    public static void Kernel(TernaryConv2dParams tp, ImplicitGemmShape d, ArrayView<float> x, ArrayView<uint> w,
        ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> s, ArrayView<float> y, ArrayView<int> acc, int writeAcc)
    {
        var sA = SharedMemory.Allocate<float>(BK * BM);
        var sB = SharedMemory.Allocate<float>(BK * BN);
        var p = tp.Conv;
        int t = Group.IdxX, tx = t & 15, ty = t >> 4;
        int g = Grid.IdxY / d.MTiles;
        int m0 = (Grid.IdxY - g * d.MTiles) * BM;
        int n0 = Grid.IdxX * BN;
        int kw = (d.K + BK - 1) / BK;

        // The 4 im2col columns this thread gathers (tx + 16j), at k = step * 16 + ty.
        var q0 = Conv2dImplicitGemmKernel.MakeColumn(p, d, g, n0 + tx);
        var q1 = Conv2dImplicitGemmKernel.MakeColumn(p, d, g, n0 + tx + 16);
        var q2 = Conv2dImplicitGemmKernel.MakeColumn(p, d, g, n0 + tx + 32);
        var q3 = Conv2dImplicitGemmKernel.MakeColumn(p, d, g, n0 + tx + 48);
        // The weight row (t % 64) and word quarter (t / 64, 4 codes) this thread decodes.
        int ln = t & 63, lq = t >> 6;
        int wr = (g * d.M + IntrinsicMath.Min(m0 + ln, d.M - 1)) * kw;

        float c00 = 0f, c01 = 0f, c10 = 0f, c11 = 0f, c20 = 0f, c21 = 0f, c30 = 0f, c31 = 0f;
        float c02 = 0f, c03 = 0f, c12 = 0f, c13 = 0f, c22 = 0f, c23 = 0f, c32 = 0f, c33 = 0f;
        for (int step = 0; step < kw; step++)
        {
            uint word = w[wr + step];
            int sh = lq * 8;
            sA[(4 * lq) * BM + ln] = TernaryKernelMath.Weight(word, sh);
            sA[(4 * lq + 1) * BM + ln] = TernaryKernelMath.Weight(word, sh + 2);
            sA[(4 * lq + 2) * BM + ln] = TernaryKernelMath.Weight(word, sh + 4);
            sA[(4 * lq + 3) * BM + ln] = TernaryKernelMath.Weight(word, sh + 6);

            int k = step * BK + ty;
            int kOk = k < d.K ? 1 : 0;
            int ci = k / d.KHKW;
            int rem = k - ci * d.KHKW;
            int ky = rem / p.KW;
            int kx = rem - ky * p.KW;
            int chan = ci * d.HW, dy = ky * p.DilH, dx = kx * p.DilW;
            int bs = ty * BN + tx;
            sB[bs] = Conv2dImplicitGemmKernel.LoadB(p, x, q0, kOk, chan, dy, dx);
            sB[bs + 16] = Conv2dImplicitGemmKernel.LoadB(p, x, q1, kOk, chan, dy, dx);
            sB[bs + 32] = Conv2dImplicitGemmKernel.LoadB(p, x, q2, kOk, chan, dy, dx);
            sB[bs + 48] = Conv2dImplicitGemmKernel.LoadB(p, x, q3, kOk, chan, dy, dx);
            Group.Barrier();
            for (int kk = 0; kk < BK; kk++)
            {
                int o = kk * BM;
                float a0 = sA[o + ty + 0]; float a1 = sA[o + ty + 16]; float a2 = sA[o + ty + 32]; float a3 = sA[o + ty + 48];
                float b0 = sB[o + tx + 0]; float b1 = sB[o + tx + 16]; float b2 = sB[o + tx + 32]; float b3 = sB[o + tx + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }
        Store(tp, d, scale, bias, s, y, acc, writeAcc, g, m0 + ty + 0, n0 + tx, c00, c01, c02, c03);
        Store(tp, d, scale, bias, s, y, acc, writeAcc, g, m0 + ty + 16, n0 + tx, c10, c11, c12, c13);
        Store(tp, d, scale, bias, s, y, acc, writeAcc, g, m0 + ty + 32, n0 + tx, c20, c21, c22, c23);
        Store(tp, d, scale, bias, s, y, acc, writeAcc, g, m0 + ty + 48, n0 + tx, c30, c31, c32, c33);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(TernaryConv2dParams tp, ImplicitGemmShape d, ArrayView<float> scale, ArrayView<float> bias,
        ArrayView<float> s, ArrayView<float> y, ArrayView<int> acc, int writeAcc, int g, int m, int n, float v0, float v1, float v2, float v3)
    {
        if (m >= d.M) return;
        int co = g * d.M + m;
        float gamma = writeAcc != 0 ? 0f : scale[tp.ScalePerRow != 0 ? co : 0]; // AccumulateA8 passes no scale
        float b = tp.Conv.HasBias != 0 ? bias[co] : 0f;
        StoreOne(tp, d, gamma, b, s, y, acc, writeAcc, co, n, v0);
        StoreOne(tp, d, gamma, b, s, y, acc, writeAcc, co, n + 16, v1);
        StoreOne(tp, d, gamma, b, s, y, acc, writeAcc, co, n + 32, v2);
        StoreOne(tp, d, gamma, b, s, y, acc, writeAcc, co, n + 48, v3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOne(TernaryConv2dParams tp, ImplicitGemmShape d, float gamma, float b, ArrayView<float> s,
        ArrayView<float> y, ArrayView<int> acc, int writeAcc, int co, int n, float v)
    {
        if (n >= d.N) return;
        int img = n / d.OHOW;
        int at = (img * tp.Conv.COut + co) * d.OHOW + (n - img * d.OHOW);
        if (writeAcc != 0)
        {
            acc[at] = (int)v;
            return;
        }
        float r = tp.Activations == TernaryActivations.A8 ? v * gamma / s[img] : v * gamma;
        y[at] = TernaryKernelMath.Activate(r + b, tp.Conv.Act, tp.Conv.Slope);
    }
}
