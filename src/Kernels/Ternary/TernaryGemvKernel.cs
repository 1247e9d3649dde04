using System.Runtime.CompilerServices;
using ILGPU;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// TernaryLinear for few tokens (M &lt;= 4): a memory-bound GEMV over the
/// packed weights. One group of W warps (<see cref="DefaultWarps"/>, or 1 to <see cref="MaxWarps"/>: the group's
/// size says) computes <see cref="Rows"/> consecutive output rows of one token, splitting K: lane l of warp v walks
/// the packed words v * WarpSize + l + j * W * WarpSize of those rows. Split-K matters on a large GPU: with one
/// warp per 8 rows an 8192 x 8192 layer is only 1024 warps (a tenth of an H100's thread slots, too
/// few bytes in flight); 8 warps per 8 rows give 8192 warps. Every row's word loads are
/// coalesced (WarpSize consecutive words per request) and each lane has <see cref="Rows"/>
/// independent 4-byte loads in flight per step. The 16 activations of a word are read once and
/// reused by all <see cref="Rows"/> rows, which keeps the x traffic from L1 at 2x the weight bytes
/// instead of 16x. Codes are applied multiply-free (two predicated adds, <see cref="TernaryKernelMath.Accumulate"/>); a shuffle tree sums
/// the lanes (WarpSize read at run time), shared memory the warps; thread r &lt; Rows applies scale
/// and bias to row n0 + r.
/// Grid: X = ceil(N / Rows), Y = tokens; groups of W whole warps. How W trades split-K parallelism (more warps in
/// flight) against per-warp overhead (a lane does only kw / (W * WarpSize) steps: 1 for 11008 x 4096 at W = 8) is
/// for a GPU to measure: `gpuanomaly bench` times W = 2, 4 and 8 on the GEMV shapes.
/// Rows past N are clamped to row N - 1 for loading and never stored.
/// </summary>
internal static class TernaryGemvKernel
{
    public const int Rows = 8;
    /// <summary>Warps per group by default, splitting K: all of them work on the same rows (see the class comment).</summary>
    public const int DefaultWarps = 8;
    /// <summary>The most warps a group may have (the shared partial sums are sized for it).</summary>
    public const int MaxWarps = 8;

    public static void A32(TernaryLinearParams p, ArrayView<float> x, ArrayView<uint> w, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> y)
    {
        var part = SharedMemory.Allocate<float>(MaxWarps * Rows);
        int ws = Warp.WarpSize, lane = Warp.LaneIdx, warps = Group.DimX / ws;
        int n0 = Grid.IdxX * Rows, wid = Warp.WarpIdx;
        if (n0 >= p.N) return; // the whole group: n0 is uniform across it
        int m = Grid.IdxY, kw = p.KWords, last = p.N - 1;
        int b0 = IntrinsicMath.Min(n0 + 0, last) * kw;
        int b1 = IntrinsicMath.Min(n0 + 1, last) * kw;
        int b2 = IntrinsicMath.Min(n0 + 2, last) * kw;
        int b3 = IntrinsicMath.Min(n0 + 3, last) * kw;
        int b4 = IntrinsicMath.Min(n0 + 4, last) * kw;
        int b5 = IntrinsicMath.Min(n0 + 5, last) * kw;
        int b6 = IntrinsicMath.Min(n0 + 6, last) * kw;
        int b7 = IntrinsicMath.Min(n0 + 7, last) * kw;
        int xAt = m * p.K, full = p.K / TernaryPacking.WeightsPerWord;
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f, a4 = 0f, a5 = 0f, a6 = 0f, a7 = 0f;
        for (int wi = wid * ws + lane; wi < kw; wi += warps * ws)
        {
            uint w0 = w[b0 + wi];
            uint w1 = w[b1 + wi];
            uint w2 = w[b2 + wi];
            uint w3 = w[b3 + wi];
            uint w4 = w[b4 + wi];
            uint w5 = w[b5 + wi];
            uint w6 = w[b6 + wi];
            uint w7 = w[b7 + wi];
            int k = xAt + wi * TernaryPacking.WeightsPerWord;
            if (wi < full)
            {
                // 16 activations in 4 hand-unrolled quads (ILGPU 1.5.3 does not unroll).
                for (int sh = 0; sh < 32; sh += 8, k += 4)
                {
                    float x0 = x[k + 0];
                    float x1 = x[k + 1];
                    float x2 = x[k + 2];
                    float x3 = x[k + 3];
                    a0 = TernaryKernelMath.Accumulate(a0, w0, sh + 0, x0); a1 = TernaryKernelMath.Accumulate(a1, w1, sh + 0, x0); a2 = TernaryKernelMath.Accumulate(a2, w2, sh + 0, x0); a3 = TernaryKernelMath.Accumulate(a3, w3, sh + 0, x0);
                    a4 = TernaryKernelMath.Accumulate(a4, w4, sh + 0, x0); a5 = TernaryKernelMath.Accumulate(a5, w5, sh + 0, x0); a6 = TernaryKernelMath.Accumulate(a6, w6, sh + 0, x0); a7 = TernaryKernelMath.Accumulate(a7, w7, sh + 0, x0);
                    a0 = TernaryKernelMath.Accumulate(a0, w0, sh + 2, x1); a1 = TernaryKernelMath.Accumulate(a1, w1, sh + 2, x1); a2 = TernaryKernelMath.Accumulate(a2, w2, sh + 2, x1); a3 = TernaryKernelMath.Accumulate(a3, w3, sh + 2, x1);
                    a4 = TernaryKernelMath.Accumulate(a4, w4, sh + 2, x1); a5 = TernaryKernelMath.Accumulate(a5, w5, sh + 2, x1); a6 = TernaryKernelMath.Accumulate(a6, w6, sh + 2, x1); a7 = TernaryKernelMath.Accumulate(a7, w7, sh + 2, x1);
                    a0 = TernaryKernelMath.Accumulate(a0, w0, sh + 4, x2); a1 = TernaryKernelMath.Accumulate(a1, w1, sh + 4, x2); a2 = TernaryKernelMath.Accumulate(a2, w2, sh + 4, x2); a3 = TernaryKernelMath.Accumulate(a3, w3, sh + 4, x2);
                    a4 = TernaryKernelMath.Accumulate(a4, w4, sh + 4, x2); a5 = TernaryKernelMath.Accumulate(a5, w5, sh + 4, x2); a6 = TernaryKernelMath.Accumulate(a6, w6, sh + 4, x2); a7 = TernaryKernelMath.Accumulate(a7, w7, sh + 4, x2);
                    a0 = TernaryKernelMath.Accumulate(a0, w0, sh + 6, x3); a1 = TernaryKernelMath.Accumulate(a1, w1, sh + 6, x3); a2 = TernaryKernelMath.Accumulate(a2, w2, sh + 6, x3); a3 = TernaryKernelMath.Accumulate(a3, w3, sh + 6, x3);
                    a4 = TernaryKernelMath.Accumulate(a4, w4, sh + 6, x3); a5 = TernaryKernelMath.Accumulate(a5, w5, sh + 6, x3); a6 = TernaryKernelMath.Accumulate(a6, w6, sh + 6, x3); a7 = TernaryKernelMath.Accumulate(a7, w7, sh + 6, x3);
                }
            }
            else
            {
                int end = xAt + p.K;
                for (int sh = 0; k < end; sh += 2, k++)
                {
                    float xv = x[k];
                    a0 = TernaryKernelMath.Accumulate(a0, w0, sh, xv); a1 = TernaryKernelMath.Accumulate(a1, w1, sh, xv); a2 = TernaryKernelMath.Accumulate(a2, w2, sh, xv); a3 = TernaryKernelMath.Accumulate(a3, w3, sh, xv);
                    a4 = TernaryKernelMath.Accumulate(a4, w4, sh, xv); a5 = TernaryKernelMath.Accumulate(a5, w5, sh, xv); a6 = TernaryKernelMath.Accumulate(a6, w6, sh, xv); a7 = TernaryKernelMath.Accumulate(a7, w7, sh, xv);
                }
            }
        }
        for (int off = ws / 2; off > 0; off >>= 1)
        {
            a0 += Warp.ShuffleDown(a0, off);
            a1 += Warp.ShuffleDown(a1, off);
            a2 += Warp.ShuffleDown(a2, off);
            a3 += Warp.ShuffleDown(a3, off);
            a4 += Warp.ShuffleDown(a4, off);
            a5 += Warp.ShuffleDown(a5, off);
            a6 += Warp.ShuffleDown(a6, off);
            a7 += Warp.ShuffleDown(a7, off);
        }
        if (lane == 0)
        {
            part[wid * Rows + 0] = a0;
            part[wid * Rows + 1] = a1;
            part[wid * Rows + 2] = a2;
            part[wid * Rows + 3] = a3;
            part[wid * Rows + 4] = a4;
            part[wid * Rows + 5] = a5;
            part[wid * Rows + 6] = a6;
            part[wid * Rows + 7] = a7;
        }
        Group.Barrier();
        // A group of one small warp (the CPU emulator's are 4 lanes) has fewer threads than rows.
        for (int t = Group.IdxX; t < Rows; t += Group.DimX)
        {
            float v = 0f;
            for (int i = 0; i < warps; i++) v += part[i * Rows + t];
            StoreA32(p, scale, bias, y, m, n0 + t, v);
        }
    }

    /// <summary>
    /// A8: q holds the packed int8 activations (<see cref="TernaryQuantizeKernel"/>, padded with
    /// zeros to whole words, so no tail path), four dp4a per word and row, exact int32 sums; the
    /// code offset (w = code - 1) is removed once per token by subtracting qsum[m]. writeAcc = 1
    /// stores the int32 accumulators into acc instead of y (for exact tests).
    /// </summary>
    public static void A8(TernaryLinearParams p, ArrayView<int> q, ArrayView<uint> w, ArrayView<float> scale,
        ArrayView<float> bias, ArrayView<float> s, ArrayView<int> qsum, ArrayView<float> y, ArrayView<int> acc, int writeAcc)
    {
        var part = SharedMemory.Allocate<int>(MaxWarps * Rows);
        int ws = Warp.WarpSize, lane = Warp.LaneIdx, warps = Group.DimX / ws;
        int n0 = Grid.IdxX * Rows, wid = Warp.WarpIdx;
        if (n0 >= p.N) return;
        int m = Grid.IdxY, kw = p.KWords, last = p.N - 1;
        int b0 = IntrinsicMath.Min(n0 + 0, last) * kw;
        int b1 = IntrinsicMath.Min(n0 + 1, last) * kw;
        int b2 = IntrinsicMath.Min(n0 + 2, last) * kw;
        int b3 = IntrinsicMath.Min(n0 + 3, last) * kw;
        int b4 = IntrinsicMath.Min(n0 + 4, last) * kw;
        int b5 = IntrinsicMath.Min(n0 + 5, last) * kw;
        int b6 = IntrinsicMath.Min(n0 + 6, last) * kw;
        int b7 = IntrinsicMath.Min(n0 + 7, last) * kw;
        int qAt = m * kw * 4;
        int c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
        for (int wi = wid * ws + lane; wi < kw; wi += warps * ws)
        {
            int qi = qAt + 4 * wi;
            int q0 = q[qi], q1 = q[qi + 1], q2 = q[qi + 2], q3 = q[qi + 3];
            uint w0 = w[b0 + wi];
            uint w1 = w[b1 + wi];
            uint w2 = w[b2 + wi];
            uint w3 = w[b3 + wi];
            uint w4 = w[b4 + wi];
            uint w5 = w[b5 + wi];
            uint w6 = w[b6 + wi];
            uint w7 = w[b7 + wi];
            c0 = TernaryKernelMath.DotWord(w0, q0, q1, q2, q3, c0);
            c1 = TernaryKernelMath.DotWord(w1, q0, q1, q2, q3, c1);
            c2 = TernaryKernelMath.DotWord(w2, q0, q1, q2, q3, c2);
            c3 = TernaryKernelMath.DotWord(w3, q0, q1, q2, q3, c3);
            c4 = TernaryKernelMath.DotWord(w4, q0, q1, q2, q3, c4);
            c5 = TernaryKernelMath.DotWord(w5, q0, q1, q2, q3, c5);
            c6 = TernaryKernelMath.DotWord(w6, q0, q1, q2, q3, c6);
            c7 = TernaryKernelMath.DotWord(w7, q0, q1, q2, q3, c7);
        }
        for (int off = ws / 2; off > 0; off >>= 1)
        {
            c0 += Warp.ShuffleDown(c0, off);
            c1 += Warp.ShuffleDown(c1, off);
            c2 += Warp.ShuffleDown(c2, off);
            c3 += Warp.ShuffleDown(c3, off);
            c4 += Warp.ShuffleDown(c4, off);
            c5 += Warp.ShuffleDown(c5, off);
            c6 += Warp.ShuffleDown(c6, off);
            c7 += Warp.ShuffleDown(c7, off);
        }
        if (lane == 0)
        {
            part[wid * Rows + 0] = c0;
            part[wid * Rows + 1] = c1;
            part[wid * Rows + 2] = c2;
            part[wid * Rows + 3] = c3;
            part[wid * Rows + 4] = c4;
            part[wid * Rows + 5] = c5;
            part[wid * Rows + 6] = c6;
            part[wid * Rows + 7] = c7;
        }
        Group.Barrier();
        for (int t = Group.IdxX; t < Rows; t += Group.DimX)
        {
            int v = -qsum[m];
            for (int i = 0; i < warps; i++) v += part[i * Rows + t];
            StoreA8(p, scale, bias, s, y, acc, writeAcc, m, n0 + t, v);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreA32(TernaryLinearParams p, ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> y,
        int m, int n, float a)
    {
        if (n >= p.N) return;
        float v = a * scale[p.ScalePerRow != 0 ? n : 0];
        if (p.HasBias != 0) v += bias[n];
        y[m * p.N + n] = v;
    }

    /// <summary>y = acc * gamma / s + bias in float32 (or the raw accumulator when writeAcc = 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreA8(TernaryLinearParams p, ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> s,
        ArrayView<float> y, ArrayView<int> acc, int writeAcc, int m, int n, int a)
    {
        if (n >= p.N) return;
        if (writeAcc != 0)
        {
            acc[m * p.N + n] = a;
            return;
        }
        float v = a * scale[p.ScalePerRow != 0 ? n : 0] / s[m];
        if (p.HasBias != 0) v += bias[n];
        y[m * p.N + n] = v;
    }
}
