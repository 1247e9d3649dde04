using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace GpuAnomaly.Kernels.Attention;

/// <summary>
/// Fused <see cref="WindowAttentionParams"/> attention for the `cpu` device: Parallel.For over (batch, group, head);
/// each task gathers its group's q (scaled), k (transposed) and v straight from qkv into small per-thread buffers
/// (no partition or roll copy of the map), then takes the queries four at a time: one pass over K gives four score
/// rows (SIMD over keys), each gets the bias row, the shift mask and a stable softmax, and one pass over V gives the
/// four output rows (SIMD over channels), written straight into token order. Four queries per pass read K and V a
/// quarter as often, which is what large groups (sparse and global attention, hundreds of tokens whose K and V do
/// not fit in L1) are bound by.
/// </summary>
public static class WindowAttentionCpu
{
    private const int QueryBlock = 4;
    [ThreadStatic] private static float[]? t_scratch;

    public static void Forward(in WindowAttentionParams p, ReadOnlySpan<float> qkv, ReadOnlySpan<float> padQkv,
        ReadOnlySpan<float> biasTable, Span<float> y)
    {
        p.CheckLengths(qkv.Length, padQkv.Length, biasTable.Length, y.Length);
        // The relative bias of (query i, key j) is the same in every window: expand the table once per call to
        // [heads, n, n] rows that the score loop adds with one vector call.
        // Rented: heads * n^2 floats pass the large-object-heap threshold from ws 7 with 9 heads.
        float[] biasRows = [];
        if (p.Grouping == AttentionGrouping.Window && p.HasRelativeBias != 0)
        {
            int n = p.GroupSize;
            biasRows = ArrayPool<float>.Shared.Rent(p.Heads * n * n);
            for (int h = 0; h < p.Heads; h++)
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++)
                        biasRows[(h * n + i) * n + j] = biasTable[p.RelativeIndex(i, j) * p.Heads + h];
        }
        unsafe
        {
            fixed (float* qkvPtr = qkv, padPtr = padQkv, biasPtr = biasRows, yPtr = y)
            {
                var pp = p;
                nint q = (nint)qkvPtr, pad = (nint)padPtr, bias = (nint)biasPtr, yy = (nint)yPtr;
                int tasks = p.B * p.GroupsPerImage * p.Heads;
                try
                {
                    Parallel.For(0, tasks, task => Attend(pp, task, (float*)q, (float*)pad, (float*)bias, (float*)yy));
                }
                finally
                {
                    if (biasRows.Length > 0) ArrayPool<float>.Shared.Return(biasRows);
                }
            }
        }
    }

    // Hot loop: compiled fully optimized at first call, not after tier-0 (short CLI runs never reach tier 1).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Attend(in WindowAttentionParams p, int task, float* qkv, float* pad, float* biasRows, float* y)
    {
        int h = task % p.Heads, bg = task / p.Heads;
        int b = bg / p.GroupsPerImage, g = bg - b * p.GroupsPerImage;
        int n = p.GroupSize, d = p.HeadDim, c = p.Channels, c3 = 3 * c;
        int vw = Vector<float>.Count;
        int np = (n + vw - 1) / vw * vw; // score rows and kT rows padded to whole vectors
        int dp = (d + vw - 1) / vw * vw; // v rows padded to whole vectors
        float scale = p.Scale;

        // Scratch: q [n, d], kT [d, np], v [n, dp], scores [QueryBlock, np], tokens [n], regions [n].
        int need = n * d + d * np + n * dp + QueryBlock * np + 2 * n;
        var scratch = t_scratch;
        if (scratch is null || scratch.Length < need) t_scratch = scratch = new float[need];
        fixed (float* s0 = scratch)
        {
            float* q = s0, kT = q + n * d, v = kT + d * np, scores = v + n * dp;
            int* tokens = (int*)(scores + QueryBlock * np), regions = tokens + n;
            new Span<float>(kT, d * np).Clear();
            if (dp != d) new Span<float>(v, n * dp).Clear();
            bool window = p.Grouping == AttentionGrouping.Window;
            bool hasBias = window && p.HasRelativeBias != 0, masked = window && p.Shift > 0;
            for (int t = 0; t < n; t++)
            {
                int token = p.SourceToken(g, t);
                tokens[t] = token;
                regions[t] = masked ? p.Region(g, t) : 0;
                float* src = token >= 0 ? qkv + ((long)b * p.Tokens + token) * c3 : pad;
                src += h * d;
                for (int e = 0; e < d; e++)
                {
                    q[t * d + e] = src[e] * scale;
                    kT[e * np + t] = src[c + e];
                    v[t * dp + e] = src[2 * c + e];
                }
            }

            var inv = stackalloc float[QueryBlock];
            for (int i0 = 0; i0 < n; i0 += QueryBlock)
            {
                int rows = Math.Min(QueryBlock, n - i0);
                // Rows past the end repeat the last query; their results are not written.
                float* q0 = q + i0 * d, q1 = q + (i0 + Math.Min(1, rows - 1)) * d;
                float* q2 = q + (i0 + Math.Min(2, rows - 1)) * d, q3 = q + (i0 + Math.Min(3, rows - 1)) * d;
                for (int j = 0; j < np; j += vw)
                {
                    Vector<float> a0 = default, a1 = default, a2 = default, a3 = default;
                    float* k = kT + j;
                    for (int e = 0; e < d; e++, k += np)
                    {
                        var kv = Unsafe.ReadUnaligned<Vector<float>>(k);
                        a0 = Vector.FusedMultiplyAdd(new Vector<float>(q0[e]), kv, a0);
                        a1 = Vector.FusedMultiplyAdd(new Vector<float>(q1[e]), kv, a1);
                        a2 = Vector.FusedMultiplyAdd(new Vector<float>(q2[e]), kv, a2);
                        a3 = Vector.FusedMultiplyAdd(new Vector<float>(q3[e]), kv, a3);
                    }
                    Unsafe.WriteUnaligned(scores + j, a0);
                    Unsafe.WriteUnaligned(scores + np + j, a1);
                    Unsafe.WriteUnaligned(scores + 2 * np + j, a2);
                    Unsafe.WriteUnaligned(scores + 3 * np + j, a3);
                }
                for (int r = 0; r < QueryBlock; r++)
                {
                    int i = i0 + r;
                    var row = new Span<float>(scores + r * np, n);
                    if (r >= rows || tokens[i] < 0) { row.Clear(); inv[r] = 0f; continue; } // nothing to write
                    if (hasBias) TensorPrimitives.Add(row, new ReadOnlySpan<float>(biasRows + ((long)h * n + i) * n, n), row);
                    if (masked)
                    {
                        int ri = regions[i];
                        for (int j = 0; j < n; j++)
                            if (regions[j] != ri) row[j] += -100f;
                    }
                    TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
                    TensorPrimitives.Exp(row, row);
                    inv[r] = 1f / TensorPrimitives.Sum(row);
                }

                // out_r = sum_j p_rj v_j, SIMD over channels, four query rows per pass over V.
                float* p0 = scores, p1 = scores + np, p2 = scores + 2 * np, p3 = scores + 3 * np;
                for (int cc = 0; cc < dp; cc += vw)
                {
                    Vector<float> o0 = default, o1 = default, o2 = default, o3 = default;
                    float* vj = v + cc;
                    for (int j = 0; j < n; j++, vj += dp)
                    {
                        var vv = Unsafe.ReadUnaligned<Vector<float>>(vj);
                        o0 = Vector.FusedMultiplyAdd(new Vector<float>(p0[j]), vv, o0);
                        o1 = Vector.FusedMultiplyAdd(new Vector<float>(p1[j]), vv, o1);
                        o2 = Vector.FusedMultiplyAdd(new Vector<float>(p2[j]), vv, o2);
                        o3 = Vector.FusedMultiplyAdd(new Vector<float>(p3[j]), vv, o3);
                    }
                    Store(y, p, b, h, tokens, i0, 0, rows, cc, o0 * inv[0]);
                    Store(y, p, b, h, tokens, i0, 1, rows, cc, o1 * inv[1]);
                    Store(y, p, b, h, tokens, i0, 2, rows, cc, o2 * inv[2]);
                    Store(y, p, b, h, tokens, i0, 3, rows, cc, o3 * inv[3]);
                }
            }
        }
    }

    /// <summary>Channels [cc, cc + vw) of head h of query i0 + r, clipped to the head dim, into its token's row of y.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* y, in WindowAttentionParams p, int b, int h, int* tokens, int i0, int r, int rows, int cc, Vector<float> o)
    {
        if (r >= rows) return;
        int token = tokens[i0 + r];
        if (token < 0) return; // padded query: output discarded
        float* dst = y + ((long)b * p.Tokens + token) * p.Channels + h * p.HeadDim + cc;
        int left = p.HeadDim - cc;
        if (left >= Vector<float>.Count) Unsafe.WriteUnaligned(dst, o);
        else for (int e = 0; e < left; e++) dst[e] = o[e];
    }
}
