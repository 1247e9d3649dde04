using ILGPU;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// TernaryLinear for many tokens: explicitly grouped tiled GEMM. A group of 256 threads computes a
/// <see cref="BM"/> (tokens) x <see cref="BN"/> (output rows) tile of y; each packed weight word is
/// loaded once per tile and decoded once into shared memory, then reused by all 64 tokens (the
/// point of the tiling: the GEMV path decodes every word once per token).
/// Thread (ty, tx) = (t / 16, t % 16) owns tokens ty + 16i and rows tx + 16j (i, j &lt; 4): the
/// shared reads of one k are a broadcast (x) and 16 consecutive floats (w), and the stores of a
/// warp hit consecutive n. Tokens and rows past the edges are clamped for loading and dropped in
/// the epilogue; activations past K load as 0 (their padding codes decode to 0 as well).
/// Grid: X = N tiles, Y = M tiles.
/// </summary>
internal static class TernaryGemmKernel
{
    public const int BM = 64, BN = 64, Threads = 256;
    private const int BK = TernaryPacking.WeightsPerWord;
    /// <summary>Words per K-step of the A8 kernel (64 activations, 4 dp4a each per word).</summary>
    private const int BKW = 4;

    /// <summary>W1.58A32: x tile [16 k][64 tokens] and the decoded weight tile [16 k][64 rows] (weights as -1/0/+1 floats), K-step one word.</summary>
    public static void A32(TernaryLinearParams p, ArrayView<float> x, ArrayView<uint> w, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> y)
    {
        var sX = SharedMemory.Allocate<float>(BK * BM);
        var sW = SharedMemory.Allocate<float>(BK * BN);
        int t = Group.IdxX, tx = t & 15, ty = t >> 4;
        int n0 = Grid.IdxX * BN, m0 = Grid.IdxY * BM, kw = p.KWords;
        // Loading roles: 4 consecutive k of one token; one word quarter (4 codes) of one row.
        int lm = t >> 2, lk = (t & 3) * 4, ln = t & 63, lq = t >> 6;
        int xr = IntrinsicMath.Min(m0 + lm, p.M - 1) * p.K;
        int wr = IntrinsicMath.Min(n0 + ln, p.N - 1) * kw;
        float c00 = 0f, c01 = 0f, c10 = 0f, c11 = 0f, c20 = 0f, c21 = 0f, c30 = 0f, c31 = 0f;
        float c02 = 0f, c03 = 0f, c12 = 0f, c13 = 0f, c22 = 0f, c23 = 0f, c32 = 0f, c33 = 0f;
        for (int step = 0; step < kw; step++)
        {
            int k = step * BK + lk;
            sX[lk * BM + lm] = k < p.K ? x[xr + k] : 0f;
            sX[(lk + 1) * BM + lm] = k + 1 < p.K ? x[xr + k + 1] : 0f;
            sX[(lk + 2) * BM + lm] = k + 2 < p.K ? x[xr + k + 2] : 0f;
            sX[(lk + 3) * BM + lm] = k + 3 < p.K ? x[xr + k + 3] : 0f;
            uint word = w[wr + step];
            int sh = lq * 8;
            sW[(4 * lq) * BN + ln] = TernaryKernelMath.Weight(word, sh);
            sW[(4 * lq + 1) * BN + ln] = TernaryKernelMath.Weight(word, sh + 2);
            sW[(4 * lq + 2) * BN + ln] = TernaryKernelMath.Weight(word, sh + 4);
            sW[(4 * lq + 3) * BN + ln] = TernaryKernelMath.Weight(word, sh + 6);
            Group.Barrier();
            for (int kk = 0; kk < BK; kk++)
            {
                int o = kk * BN;
                float x0 = sX[o + ty + 0]; float x1 = sX[o + ty + 16]; float x2 = sX[o + ty + 32]; float x3 = sX[o + ty + 48];
                float v0 = sW[o + tx + 0]; float v1 = sW[o + tx + 16]; float v2 = sW[o + tx + 32]; float v3 = sW[o + tx + 48];
                c00 += x0 * v0; c01 += x0 * v1; c02 += x0 * v2; c03 += x0 * v3;
                c10 += x1 * v0; c11 += x1 * v1; c12 += x1 * v2; c13 += x1 * v3;
                c20 += x2 * v0; c21 += x2 * v1; c22 += x2 * v2; c23 += x2 * v3;
                c30 += x3 * v0; c31 += x3 * v1; c32 += x3 * v2; c33 += x3 * v3;
            }
            Group.Barrier();
        }
        if (m0 + ty + 0 < p.M) { TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 0, n0 + tx + 0, c00); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 0, n0 + tx + 16, c01); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 0, n0 + tx + 32, c02); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 0, n0 + tx + 48, c03); }
        if (m0 + ty + 16 < p.M) { TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 16, n0 + tx + 0, c10); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 16, n0 + tx + 16, c11); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 16, n0 + tx + 32, c12); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 16, n0 + tx + 48, c13); }
        if (m0 + ty + 32 < p.M) { TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 32, n0 + tx + 0, c20); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 32, n0 + tx + 16, c21); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 32, n0 + tx + 32, c22); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 32, n0 + tx + 48, c23); }
        if (m0 + ty + 48 < p.M) { TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 48, n0 + tx + 0, c30); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 48, n0 + tx + 16, c31); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 48, n0 + tx + 32, c32); TernaryGemvKernel.StoreA32(p, scale, bias, y, m0 + ty + 48, n0 + tx + 48, c33); }
    }

    /// <summary>
    /// W1.58A8: K-step of <see cref="BKW"/> words; the packed int8 activations [word][int j][64 tokens]
    /// and the raw words [word][64 rows] in shared memory, 4 dp4a per word, token and row; exact
    /// int32 sums, minus qsum (see <see cref="TernaryGemvKernel.A8"/>).
    /// </summary>
    public static void A8(TernaryLinearParams p, ArrayView<int> q, ArrayView<uint> w, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> s, ArrayView<int> qsum, ArrayView<float> y, ArrayView<int> acc, int writeAcc)
    {
        var sQ = SharedMemory.Allocate<int>(BKW * 4 * BM);
        var sW = SharedMemory.Allocate<uint>(BKW * BN);
        int t = Group.IdxX, tx = t & 15, ty = t >> 4;
        int n0 = Grid.IdxX * BN, m0 = Grid.IdxY * BM, kw = p.KWords;
        // Loading roles: the 4 ints of one word of one token; one word of one row.
        int lm = t >> 2, lw = t & 3, ln = t & 63, lv = t >> 6;
        int qr = IntrinsicMath.Min(m0 + lm, p.M - 1) * kw * 4;
        int wr = IntrinsicMath.Min(n0 + ln, p.N - 1) * kw;
        int q0, q1, q2, q3;
        int c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0, c30 = 0, c31 = 0;
        int c02 = 0, c03 = 0, c12 = 0, c13 = 0, c22 = 0, c23 = 0, c32 = 0, c33 = 0;
        for (int w0 = 0; w0 < kw; w0 += BKW)
        {
            int wi = w0 + lw, lo = lw * 4 * BM + lm;
            bool ok = wi < kw;
            sQ[lo] = ok ? q[qr + 4 * wi] : 0;
            sQ[lo + BM] = ok ? q[qr + 4 * wi + 1] : 0;
            sQ[lo + 2 * BM] = ok ? q[qr + 4 * wi + 2] : 0;
            sQ[lo + 3 * BM] = ok ? q[qr + 4 * wi + 3] : 0;
            sW[lv * BN + ln] = w0 + lv < kw ? w[wr + w0 + lv] : TernaryPacking.ZeroWord;
            Group.Barrier();
            for (int jw = 0; jw < BKW; jw++)
            {
                int o = jw * 4 * BM;
                uint v0 = sW[jw * BN + tx + 0]; uint v1 = sW[jw * BN + tx + 16]; uint v2 = sW[jw * BN + tx + 32]; uint v3 = sW[jw * BN + tx + 48];
                q0 = sQ[o + ty + 0]; q1 = sQ[o + BM + ty + 0]; q2 = sQ[o + 2 * BM + ty + 0]; q3 = sQ[o + 3 * BM + ty + 0];
                c00 = TernaryKernelMath.DotWord(v0, q0, q1, q2, q3, c00);
                c01 = TernaryKernelMath.DotWord(v1, q0, q1, q2, q3, c01);
                c02 = TernaryKernelMath.DotWord(v2, q0, q1, q2, q3, c02);
                c03 = TernaryKernelMath.DotWord(v3, q0, q1, q2, q3, c03);
                q0 = sQ[o + ty + 16]; q1 = sQ[o + BM + ty + 16]; q2 = sQ[o + 2 * BM + ty + 16]; q3 = sQ[o + 3 * BM + ty + 16];
                c10 = TernaryKernelMath.DotWord(v0, q0, q1, q2, q3, c10);
                c11 = TernaryKernelMath.DotWord(v1, q0, q1, q2, q3, c11);
                c12 = TernaryKernelMath.DotWord(v2, q0, q1, q2, q3, c12);
                c13 = TernaryKernelMath.DotWord(v3, q0, q1, q2, q3, c13);
                q0 = sQ[o + ty + 32]; q1 = sQ[o + BM + ty + 32]; q2 = sQ[o + 2 * BM + ty + 32]; q3 = sQ[o + 3 * BM + ty + 32];
                c20 = TernaryKernelMath.DotWord(v0, q0, q1, q2, q3, c20);
                c21 = TernaryKernelMath.DotWord(v1, q0, q1, q2, q3, c21);
                c22 = TernaryKernelMath.DotWord(v2, q0, q1, q2, q3, c22);
                c23 = TernaryKernelMath.DotWord(v3, q0, q1, q2, q3, c23);
                q0 = sQ[o + ty + 48]; q1 = sQ[o + BM + ty + 48]; q2 = sQ[o + 2 * BM + ty + 48]; q3 = sQ[o + 3 * BM + ty + 48];
                c30 = TernaryKernelMath.DotWord(v0, q0, q1, q2, q3, c30);
                c31 = TernaryKernelMath.DotWord(v1, q0, q1, q2, q3, c31);
                c32 = TernaryKernelMath.DotWord(v2, q0, q1, q2, q3, c32);
                c33 = TernaryKernelMath.DotWord(v3, q0, q1, q2, q3, c33);
            }
            Group.Barrier();
        }
        if (m0 + ty + 0 < p.M) { int qs = qsum[m0 + ty + 0]; TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 0, n0 + tx + 0, c00 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 0, n0 + tx + 16, c01 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 0, n0 + tx + 32, c02 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 0, n0 + tx + 48, c03 - qs); }
        if (m0 + ty + 16 < p.M) { int qs = qsum[m0 + ty + 16]; TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 16, n0 + tx + 0, c10 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 16, n0 + tx + 16, c11 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 16, n0 + tx + 32, c12 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 16, n0 + tx + 48, c13 - qs); }
        if (m0 + ty + 32 < p.M) { int qs = qsum[m0 + ty + 32]; TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 32, n0 + tx + 0, c20 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 32, n0 + tx + 16, c21 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 32, n0 + tx + 32, c22 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 32, n0 + tx + 48, c23 - qs); }
        if (m0 + ty + 48 < p.M) { int qs = qsum[m0 + ty + 48]; TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 48, n0 + tx + 0, c30 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 48, n0 + tx + 16, c31 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 48, n0 + tx + 32, c32 - qs); TernaryGemvKernel.StoreA8(p, scale, bias, s, y, acc, writeAcc, m0 + ty + 48, n0 + tx + 48, c33 - qs); }
    }
}
