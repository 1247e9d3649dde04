using System.Numerics.Tensors;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Attention;

/// <summary>
/// The readable float32 version of <see cref="WindowAttentionParams"/>, step by step as PyTorch eager runs it:
/// partition copy (roll + pad + gather into [B*groups, G, 3C]), per group and head Q K^T by GEMM, bias and mask,
/// softmax, P V by GEMM, and the reverse copy (scatter + roll back + crop). Kept beside the fused kernels as the
/// reference they are benchmarked against.
/// </summary>
public static class WindowAttentionUnfused
{
    public static void Forward(in WindowAttentionParams p, ReadOnlySpan<float> qkv, ReadOnlySpan<float> padQkv,
        ReadOnlySpan<float> biasTable, Span<float> y)
    {
        p.CheckLengths(qkv.Length, padQkv.Length, biasTable.Length, y.Length);
        int c = p.Channels, c3 = 3 * c, n = p.GroupSize, groups = p.B * p.GroupsPerImage, gpi = p.GroupsPerImage;

        // 1. Partition: windows[bg, t, :] = qkv of the token at position t of group g (padQkv for padding).
        var windows = new float[(long)groups * n * c3];
        for (int bg = 0; bg < groups; bg++)
        {
            int b = bg / gpi, g = bg - b * gpi;
            for (int t = 0; t < n; t++)
            {
                int token = p.SourceToken(g, t);
                var src = token >= 0 ? qkv.Slice((int)(((long)b * p.Tokens + token) * c3), c3) : padQkv;
                src.CopyTo(windows.AsSpan((int)(((long)bg * n + t) * c3), c3));
            }
        }

        // 2-4. Attention per (group, head) into outWindows[bg, t, h*d .. (h+1)*d).
        var outWindows = new float[(long)groups * n * c];
        var bias = biasTable.ToArray();
        var pp = p;
        CpuParallel.For(0, groups * p.Heads, task => Attend(pp, task / pp.Heads, task % pp.Heads, windows, bias, outWindows));

        // 5. Reverse: scatter the in-map tokens back to token order.
        for (int bg = 0; bg < groups; bg++)
        {
            int b = bg / gpi, g = bg - b * gpi;
            for (int t = 0; t < n; t++)
            {
                int token = p.SourceToken(g, t);
                if (token < 0) continue;
                outWindows.AsSpan((int)(((long)bg * n + t) * c), c).CopyTo(y.Slice((int)(((long)b * p.Tokens + token) * c), c));
            }
        }
    }

    private static void Attend(in WindowAttentionParams p, int bg, int h, float[] windows, float[] biasTable, float[] outWindows)
    {
        int n = p.GroupSize, d = p.HeadDim, c = p.Channels, c3 = 3 * c;
        float scale = p.Scale;
        var q = new float[n * d];
        var kT = new float[d * n];
        var v = new float[n * d];
        long at = (long)bg * n * c3;
        for (int t = 0; t < n; t++)
            for (int e = 0; e < d; e++)
            {
                long row = at + (long)t * c3 + h * d + e;
                q[t * d + e] = windows[row] * scale;
                kT[e * n + t] = windows[row + c];
                v[t * d + e] = windows[row + 2 * c];
            }

        var scores = new float[n * n];
        Sgemm.Multiply(n, n, d, q, d, kT, n, scores, n);
        if (p.Grouping == AttentionGrouping.Window && (p.HasRelativeBias != 0 || p.Shift > 0))
        {
            int g = bg % p.GroupsPerImage;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                {
                    if (p.HasRelativeBias != 0) scores[i * n + j] += biasTable[p.RelativeIndex(i, j) * p.Heads + h];
                    if (p.Region(g, i) != p.Region(g, j)) scores[i * n + j] += -100f;
                }
        }
        for (int i = 0; i < n; i++)
        {
            // Stable softmax: subtract the row max before exp.
            var row = scores.AsSpan(i * n, n);
            TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
            TensorPrimitives.Exp(row, row);
            TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
        }

        var o = new float[n * d];
        Sgemm.Multiply(n, d, n, scores, n, v, d, o, d);
        for (int t = 0; t < n; t++)
            o.AsSpan(t * d, d).CopyTo(outWindows.AsSpan((int)(((long)bg * n + t) * c + h * d), d));
    }
}
