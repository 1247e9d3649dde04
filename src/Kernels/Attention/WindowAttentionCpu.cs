using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace GpuAnomaly.Kernels.Attention;

/// <summary>
/// Fused <see cref="WindowAttentionParams"/> attention for the `cpu` device: Parallel.For over (batch, group, head);
/// each task gathers its group's q (scaled), k (transposed) and v straight from qkv into small per-thread buffers
/// (no partition or roll copy of the map), computes one score row at a time with SIMD over keys, a stable softmax,
/// the weighted sum of v with SIMD over channels, and writes the output row into token order.
/// </summary>
public static class WindowAttentionCpu
{
    [ThreadStatic] private static float[]? t_scratch;

    public static void Forward(in WindowAttentionParams p, ReadOnlySpan<float> qkv, ReadOnlySpan<float> padQkv,
        ReadOnlySpan<float> biasTable, Span<float> y)
    {
        p.CheckLengths(qkv.Length, padQkv.Length, biasTable.Length, y.Length);
        unsafe
        {
            fixed (float* qkvPtr = qkv, padPtr = padQkv, biasPtr = biasTable, yPtr = y)
            {
                var pp = p;
                nint q = (nint)qkvPtr, pad = (nint)padPtr, bias = (nint)biasPtr, yy = (nint)yPtr;
                int tasks = p.B * p.GroupsPerImage * p.Heads;
                Parallel.For(0, tasks, task => Attend(pp, task, (float*)q, (float*)pad, (float*)bias, (float*)yy));
            }
        }
    }

    private static unsafe void Attend(in WindowAttentionParams p, int task, float* qkv, float* pad, float* bias, float* y)
    {
        int h = task % p.Heads, bg = task / p.Heads;
        int b = bg / p.GroupsPerImage, g = bg - b * p.GroupsPerImage;
        int n = p.GroupSize, d = p.HeadDim, c = p.Channels, c3 = 3 * c;
        int vw = Vector<float>.Count;
        int np = (n + vw - 1) / vw * vw; // score rows padded to whole vectors
        float scale = p.Scale;

        // Scratch: q [n, d], kT [d, np], v [n, d], scores [np], out [d], tokens [n].
        int need = 2 * n * d + d * np + np + d + n;
        var scratch = t_scratch;
        if (scratch is null || scratch.Length < need) t_scratch = scratch = new float[need];
        fixed (float* s0 = scratch)
        {
            float* q = s0, kT = q + n * d, v = kT + d * np, scores = v + n * d, o = scores + np;
            int* tokens = (int*)(o + d);
            new Span<float>(kT, d * np).Clear();
            for (int t = 0; t < n; t++)
            {
                int token = p.SourceToken(g, t);
                tokens[t] = token;
                float* src = token >= 0 ? qkv + ((long)b * p.Tokens + token) * c3 : pad;
                src += h * d;
                for (int e = 0; e < d; e++)
                {
                    q[t * d + e] = src[e] * scale;
                    kT[e * np + t] = src[c + e];
                    v[t * d + e] = src[2 * c + e];
                }
            }

            bool window = p.Grouping == AttentionGrouping.Window;
            bool hasBias = window && p.HasRelativeBias != 0, masked = window && p.Shift > 0;
            for (int i = 0; i < n; i++)
            {
                if (tokens[i] < 0) continue; // padded query: output discarded
                // scores[j] = q_i . k_j, SIMD over keys (kT rows are contiguous in j).
                float* qi = q + i * d;
                for (int j = 0; j < np; j += vw)
                {
                    var acc = Vector<float>.Zero;
                    float* k = kT + j;
                    for (int e = 0; e < d; e++, k += np)
                        acc = Vector.FusedMultiplyAdd(new Vector<float>(qi[e]), Unsafe.ReadUnaligned<Vector<float>>(k), acc);
                    Unsafe.WriteUnaligned(scores + j, acc);
                }
                if (hasBias || masked)
                {
                    int ri = masked ? p.Region(g, i) : 0;
                    for (int j = 0; j < n; j++)
                    {
                        if (hasBias) scores[j] += bias[p.RelativeIndex(i, j) * p.Heads + h];
                        if (masked && p.Region(g, j) != ri) scores[j] += -100f;
                    }
                }
                var row = new Span<float>(scores, n);
                TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
                TensorPrimitives.Exp(row, row);
                float inv = 1f / TensorPrimitives.Sum(row);

                // out = sum_j p_j v_j, SIMD over channels.
                var outRow = new Span<float>(o, d);
                outRow.Clear();
                for (int j = 0; j < n; j++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v + j * d, d), scores[j], outRow, outRow);
                TensorPrimitives.Multiply(outRow, inv, new Span<float>(y + ((long)b * p.Tokens + tokens[i]) * c + h * d, d));
            }
        }
    }
}
