using GpuAnomaly.Kernels.Cpu;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// nn.LayerNorm over the last dimension for the `cpu` device: per row two SIMD passes (mean, then the centred sum of
/// squares, which avoids E[x^2] - mean^2 cancellation) and a third that writes; rows spread over the cores when large.
/// y may be x.
/// </summary>
public static unsafe class LayerNormCpu
{
    private const long ParallelMinElements = 1 << 15;

    public static void Forward(in LayerNormParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y)
    {
        p.CheckLengths(x.Length, weight.Length, bias.Length, y.Length);
        fixed (float* px = x, pw = weight, pb = bias, py = y)
        {
            if (p.Elements < ParallelMinElements) Rows(p, px, pw, pb, py, 0, p.M);
            else
            {
                var pp = p;
                float* cx = px, cw = pw, cb = pb, cy = py;
                int chunks = Math.Min(p.M, CpuParallel.Threads * 4);
                CpuParallel.For(0, chunks, i => Rows(pp, cx, cw, cb, cy, (int)((long)pp.M * i / chunks), (int)((long)pp.M * (i + 1) / chunks)));
            }
        }
    }

    // Hot loop: compiled fully optimized at first call, not after tier-0 (short CLI runs never reach tier 1).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows(in LayerNormParams p, float* x, float* weight, float* bias, float* y, int m0, int m1)
    {
        int c = p.C, v = Vector<float>.Count;
        for (int m = m0; m < m1; m++)
        {
            float* xr = x + (long)m * c, yr = y + (long)m * c;
            var acc = Vector<float>.Zero;
            int i = 0;
            for (; i <= c - v; i += v) acc += Vector.Load(xr + i);
            float sum = Vector.Sum(acc);
            for (; i < c; i++) sum += xr[i];
            float mean = sum / c;

            var vMean = new Vector<float>(mean);
            acc = Vector<float>.Zero;
            i = 0;
            for (; i <= c - v; i += v)
            {
                var d = Vector.Load(xr + i) - vMean;
                acc += d * d;
            }
            float sq = Vector.Sum(acc);
            for (; i < c; i++) sq += (xr[i] - mean) * (xr[i] - mean);
            float rstd = 1f / MathF.Sqrt(sq / c + p.Eps);

            var vRstd = new Vector<float>(rstd);
            i = 0;
            for (; i <= c - v; i += v)
                ((Vector.Load(xr + i) - vMean) * vRstd * Vector.Load(weight + i) + Vector.Load(bias + i)).Store(yr + i);
            for (; i < c; i++) yr[i] = (xr[i] - mean) * rstd * weight[i] + bias[i];
        }
    }
}
