using GpuAnomaly.Kernels.Cpu;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>The token ops for the `cpu` device: the mean over tokens (SIMD over C) and the NCHW -> tokens transpose.</summary>
public static unsafe class TokensCpu
{
    private const long ParallelMinElements = 1 << 16;

    /// <summary>x [B, T, C] -> y [B, C], the mean over the T tokens (global average pooling).</summary>
    public static void Mean(in TokensParams p, ReadOnlySpan<float> x, Span<float> y)
    {
        p.CheckLengths("token_mean", x.Length, p.Elements, y.Length, p.PooledElements);
        int v = Vector<float>.Count;
        fixed (float* px = x, py = y)
        {
            for (int b = 0; b < p.B; b++)
            {
                float* xb = px + (long)b * p.T * p.C, yb = py + (long)b * p.C;
                int c0 = 0;
                for (; c0 <= p.C - v; c0 += v)
                {
                    // Two accumulators: half the dependency chain, and a shorter rounding walk.
                    Vector<float> s0 = default, s1 = default;
                    int t = 0;
                    for (; t + 1 < p.T; t += 2)
                    {
                        s0 += Vector.Load(xb + (long)t * p.C + c0);
                        s1 += Vector.Load(xb + (long)(t + 1) * p.C + c0);
                    }
                    if (t < p.T) s0 += Vector.Load(xb + (long)t * p.C + c0);
                    ((s0 + s1) / new Vector<float>(p.T)).Store(yb + c0);
                }
                for (; c0 < p.C; c0++)
                {
                    float s = 0f;
                    for (int t = 0; t < p.T; t++) s += xb[(long)t * p.C + c0];
                    yb[c0] = s / p.T;
                }
            }
        }
    }

    /// <summary>x NCHW [B, C, H, W] (T = H W) -> y tokens [B, T, C], the flatten(2).transpose(1, 2) after the patch embedding.</summary>
    public static void FromNchw(in TokensParams p, ReadOnlySpan<float> x, Span<float> y)
    {
        p.CheckLengths("nchw_to_tokens", x.Length, p.Elements, y.Length, p.Elements);
        fixed (float* px = x, py = y)
        {
            // Blocks of 8 x 8 keep a source cache line in use for 8 consecutive tokens.
            var pp = p;
            float* cx = px, cy = py;
            int blocks = p.B * ((p.T + 7) / 8);
            if (p.Elements < ParallelMinElements) for (int i = 0; i < blocks; i++) Transpose(pp, cx, cy, i);
            else CpuParallel.For(0, blocks, i => Transpose(pp, cx, cy, i));
        }
    }

    // Hot loop: compiled fully optimized at first call, not after tier-0 (short CLI runs never reach tier 1).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose(in TokensParams p, float* x, float* y, int block)
    {
        int tBlocks = (p.T + 7) / 8, b = block / tBlocks, t0 = block % tBlocks * 8, t1 = Math.Min(p.T, t0 + 8);
        float* xb = x + (long)b * p.C * p.T, yb = y + (long)b * p.T * p.C;
        for (int c0 = 0; c0 < p.C; c0 += 8)
        {
            int c1 = Math.Min(p.C, c0 + 8);
            for (int t = t0; t < t1; t++)
                for (int c = c0; c < c1; c++)
                    yb[(long)t * p.C + c] = xb[(long)c * p.T + t];
        }
    }
}
