using GpuAnomaly.Kernels.Cpu;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace GpuAnomaly.Kernels.Vim;

/// <summary>
/// Fused ViM scoring for the `cpu` device (see <see cref="VimParams"/>). Samples go in blocks of
/// four: each row of W and of Rt is loaded once per block and multiplied with the four feature
/// vectors (SIMD along N), so the head and the basis stream through the cache a quarter as often
/// as a per-sample GEMV would. Logits feed an online (max, sum of exp) per sample and residual
/// coordinates a running sum of squares, so no logit or projection is stored anywhere; blocks
/// are spread over the cores.
/// </summary>
public static unsafe class VimCpu
{
    private const int Block = 4;

    public static void Forward(in VimParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        ReadOnlySpan<float> o, ReadOnlySpan<float> rt, Span<float> y)
    {
        p.CheckLengths(x.Length, w.Length, b.Length, o.Length, rt.Length, y.Length);
        int blocks = (p.S + Block - 1) / Block;
        var q = p;
        fixed (float* px = x, pw = w, pb = b, po = o, prt = rt, py = y)
        {
            var a = new Args { X = px, W = pw, B = pb, O = po, Rt = prt, Y = py };
            // Below ~1M multiply-adds one core beats waking the pool.
            if (blocks == 1 || (long)p.S * (p.C + p.ResidualDim) * p.N < 1 << 20)
                for (int t = 0; t < blocks; t++) Run(q, a, t);
            else CpuParallel.For(0, blocks, t => Run(q, a, t));
        }
    }

    private struct Args
    {
        public float* X, W, B, O, Rt, Y;
    }

    // Fully optimized from the first call: tier-0 code of these loops is several times slower.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run(in VimParams p, in Args a, int block)
    {
        int n = p.N, s0 = block * Block, count = Math.Min(Block, p.S - s0);
        // x - o of the block's samples; missing samples of a short block repeat the first (results ignored).
        var centered = new float[Block * n];
        fixed (float* xc = centered)
        {
            var xs = stackalloc float*[Block];
            var xcs = stackalloc float*[Block];
            for (int i = 0; i < Block; i++)
            {
                int si = s0 + (i < count ? i : 0);
                xs[i] = a.X + (long)si * n;
                xcs[i] = xc + i * n;
                for (int j = 0; j < n; j++) xcs[i][j] = xs[i][j] - a.O[j];
            }

            // Online log-sum-exp in float64: C exponentials per sample cost nothing beside C*N multiply-adds.
            var m = stackalloc double[Block];
            var sum = stackalloc double[Block];
            var sq = stackalloc double[Block];
            var d = stackalloc float[Block];
            for (int i = 0; i < Block; i++) { m[i] = double.NegativeInfinity; sum[i] = 0; sq[i] = 0; }

            for (int c = 0; c < p.C; c++)
            {
                Dot4(a.W + (long)c * n, xs, n, d);
                for (int i = 0; i < Block; i++)
                {
                    double l = d[i] + (double)a.B[c];
                    if (l > m[i]) { sum[i] = sum[i] * Math.Exp(m[i] - l) + 1; m[i] = l; }
                    else sum[i] += Math.Exp(l - m[i]);
                }
            }
            for (int k = 0; k < p.ResidualDim; k++)
            {
                Dot4(a.Rt + (long)k * n, xcs, n, d);
                for (int i = 0; i < Block; i++) sq[i] += (double)d[i] * d[i];
            }

            Span<double> outs = stackalloc double[VimParams.Outputs];
            for (int i = 0; i < count; i++)
            {
                Finish(m[i], sum[i], Math.Sqrt(sq[i]), p.Alpha, outs);
                float* yi = a.Y + (long)(s0 + i) * VimParams.Outputs;
                for (int k = 0; k < VimParams.Outputs; k++) yi[k] = (float)outs[k];
            }
        }
    }

    /// <summary>The six outputs from the online log-sum-exp state (max m, sum of exp(l - m)) and r.</summary>
    internal static void Finish(double m, double sum, double r, double alpha, Span<double> y)
    {
        double energy = m + Math.Log(sum);
        double virt = alpha * r;
        double top = Math.Max(m, virt);
        double all = top + Math.Log(sum * Math.Exp(m - top) + Math.Exp(virt - top));
        y[VimParams.VimProbability] = Math.Exp(virt - all);
        y[VimParams.VimScore] = virt - energy;
        y[VimParams.Msp] = 1 / sum;
        y[VimParams.MaxLogit] = m;
        y[VimParams.Energy] = energy;
        y[VimParams.Residual] = r;
    }

    /// <summary>d[i] = row . v[i] for the four vectors v: one load of the row per four products.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4(float* row, float** v, int n, float* d)
    {
        float* v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
        int width = Vector<float>.Count;
        Vector<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int j = 0;
        for (; j <= n - width; j += width)
        {
            var r = Vector.Load(row + j);
            a0 += r * Vector.Load(v0 + j);
            a1 += r * Vector.Load(v1 + j);
            a2 += r * Vector.Load(v2 + j);
            a3 += r * Vector.Load(v3 + j);
        }
        float t0 = Vector.Sum(a0), t1 = Vector.Sum(a1), t2 = Vector.Sum(a2), t3 = Vector.Sum(a3);
        for (; j < n; j++)
        {
            float r = row[j];
            t0 += r * v0[j]; t1 += r * v1[j]; t2 += r * v2[j]; t3 += r * v3[j];
        }
        d[0] = t0; d[1] = t1; d[2] = t2; d[3] = t3;
    }
}
