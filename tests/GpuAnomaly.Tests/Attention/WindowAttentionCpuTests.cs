using System.Diagnostics;
using System.Runtime.Intrinsics;
using GpuAnomaly.Kernels.Attention;
using Xunit;
using Xunit.Abstractions;

namespace GpuAnomaly.Tests.Attention;

/// <summary>The fused cpu attention and the unfused (partition, GEMM, softmax, GEMM, reverse) one against the float64 reference.</summary>
public class WindowAttentionCpuTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;
    private const int Shapes = 48;

    [Fact]
    public void FusedAndUnfused_MatchReference_RandomShapes()
    {
        var rng = KernelLab.NewRng(out int seed);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < Shapes; i++)
        {
            var c = WindowAttentionCase.Create(WindowAttentionCase.RandomParams(rng, i, smallDims: false), rng);
            string context = $"{c.P}, seed {seed}";
            var y = new float[c.P.OutputElements];
            KernelLab.Poison(y);
            WindowAttentionCpu.Forward(c.P, c.Qkv, c.PadQkv, c.Bias, y);
            KernelLab.AssertClose(y, c.Expected, Tolerance, "fused cpu " + context);
            KernelLab.Poison(y);
            WindowAttentionUnfused.Forward(c.P, c.Qkv, c.PadQkv, c.Bias, y);
            KernelLab.AssertClose(y, c.Expected, Tolerance, "unfused " + context);
        }
        output.WriteLine($"{Shapes} shapes in {sw.Elapsed.TotalSeconds:F1} s, seed {seed}");
    }

    /// <summary>Odd small head dims (1..17): the SIMD loops' tails.</summary>
    [Fact]
    public void Fused_OddHeadDims_MatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 12; i++)
        {
            var c = WindowAttentionCase.Create(WindowAttentionCase.RandomParams(rng, i, smallDims: true), rng);
            var y = new float[c.P.OutputElements];
            KernelLab.Poison(y);
            WindowAttentionCpu.Forward(c.P, c.Qkv, c.PadQkv, c.Bias, y);
            KernelLab.AssertClose(y, c.Expected, Tolerance, $"fused cpu {c.P}, seed {seed}");
        }
    }

    /// <summary>
    /// Shapes aimed at the fused kernel's tiles, each with and without its AVX-512 paths (register transposes of K,
    /// vscalefps in exp): head dims around whole vectors (8, 12, 24, 33, 48, 64, 72, 80: partial last channel vectors,
    /// one to five channel vectors, a second pass of channel tiles); windows whose n = ws^2 leaves 0, 1 or 9 keys past a whole vector (8, 7 and 9, 5) or
    /// spans several 64-key blocks (12); maps the windows do not divide; shifts; sparse S = 1, 2, 3 with groups of up to
    /// 576 tokens (one group at batch 1: items are single heads); batch 1, 2, 3 and 64 (qkv past L2: prefetching).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Fused_TileEdges_MatchReference(bool portable)
    {
        var rng = KernelLab.NewRng(out int seed);
        WindowAttentionParams[] shapes =
        [
            WindowAttentionParams.Window(1, 14, 14, 2, 32, 7, 0), // window_vit's blocks
            WindowAttentionParams.Window(1, 14, 14, 2, 32, 7, 3),
            WindowAttentionParams.Sparse(1, 14, 14, 2, 32, 2),
            WindowAttentionParams.Window(64, 14, 14, 2, 32, 7, 3),
            WindowAttentionParams.Window(3, 11, 13, 3, 8, 7, 3),
            WindowAttentionParams.Window(2, 10, 9, 2, 12, 7, 2, relativeBias: false),
            WindowAttentionParams.Window(1, 17, 15, 1, 24, 8, 4),
            WindowAttentionParams.Window(2, 12, 12, 2, 33, 5, 2),
            WindowAttentionParams.Window(1, 20, 19, 2, 48, 9, 4),
            WindowAttentionParams.Window(1, 25, 24, 1, 64, 12, 6),
            WindowAttentionParams.Window(2, 9, 9, 2, 80, 4, 1),
            WindowAttentionParams.Window(1, 8, 11, 1, 72, 4, 2),
            WindowAttentionParams.Sparse(2, 13, 11, 2, 24, 1),
            WindowAttentionParams.Sparse(1, 24, 24, 2, 32, 1),
            WindowAttentionParams.Sparse(3, 10, 11, 3, 12, 3),
            WindowAttentionParams.Sparse(1, 17, 18, 1, 33, 2),
        ];
        WindowAttentionCpu.ForcePortable = portable;
        try
        {
            foreach (var p in shapes)
            {
                var c = WindowAttentionCase.Create(p, rng);
                var y = new float[p.OutputElements];
                KernelLab.Poison(y);
                WindowAttentionCpu.Forward(p, c.Qkv, c.PadQkv, c.Bias, y);
                KernelLab.AssertClose(y, c.Expected, Tolerance, $"fused cpu {p}, portable {portable}, seed {seed}");
            }
        }
        finally
        {
            WindowAttentionCpu.ForcePortable = false;
        }
    }

    /// <summary>
    /// The expanded bias rows are kept per thread and matched by the table's contents: a table changed in place, more
    /// tables than the kept entries in turn, and a table seen before all give their own results.
    /// </summary>
    [Fact]
    public void Fused_BiasTablesChangingBetweenCalls_MatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var p = WindowAttentionParams.Window(1, 14, 14, 2, 32, 7, 3);
        var qkv = KernelLab.RandomFloats(rng, p.QkvElements);
        var tables = Enumerable.Range(0, 6).Select(_ => KernelLab.RandomFloats(rng, p.BiasElements)).ToArray();
        var y = new float[p.OutputElements];
        var expected = new double[p.OutputElements];
        foreach (int k in new[] { 0, 1, 0, 2, 3, 4, 5, 0, 5, -1, 0 })
        {
            var table = tables[Math.Max(k, 0)];
            if (k < 0) table[rng.Next(table.Length)] += 1f; // the same array, one element changed
            WindowAttentionReference.Forward(p, qkv, [], table, expected);
            KernelLab.Poison(y);
            WindowAttentionCpu.Forward(p, qkv, [], table, y);
            KernelLab.AssertClose(y, expected, Tolerance, $"fused cpu, table {k}, seed {seed}");
        }
    }

    /// <summary>
    /// The softmax's exp, both ways of scaling by 2^n: within 1e-6 of e^x wherever a weight can matter (down to
    /// -87, where e^x is 2^-125), and ~1e-38 rather than 0 or NaN below, for -100 (the shift mask) and -inf (padding).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Exp_IsAccurateForSoftmax(bool avx512)
    {
        double worst = 0;
        var xs = new float[16];
        for (double x0 = -87; x0 <= 0; x0 += 16 * 1e-4)
        {
            for (int i = 0; i < 16; i++) xs[i] = (float)Math.Min(0, x0 + i * 1e-4);
            var e = WindowAttentionCpu.Exp(Vector512.Create(xs), avx512);
            for (int i = 0; i < 16; i++) worst = Math.Max(worst, Math.Abs(e[i] - Math.Exp(xs[i])) / Math.Exp(xs[i]));
        }
        Assert.True(worst < 1e-6, $"max relative error {worst:E2}");
        foreach (float x in new[] { -88f, -100f, -1e30f, float.NegativeInfinity })
        {
            float e = WindowAttentionCpu.Exp(Vector512.Create(x), avx512)[0];
            Assert.True(e > 0 && e < 2e-38f, $"exp({x}) = {e}");
        }
    }

    [Fact]
    public void BadArguments_Throw()
    {
        var p = WindowAttentionParams.Window(1, 5, 5, 2, 4, 4, 2);
        var qkv = new float[p.QkvElements];
        var y = new float[p.OutputElements];
        var pad = new float[3 * p.Channels];
        var bias = new float[p.BiasElements];
        var e = Assert.Throws<ArgumentException>(() => WindowAttentionCpu.Forward(p, qkv.AsSpan(1), pad, bias, y));
        Assert.Contains("window_attention", e.Message);
        // The 5x5 map is padded to 8x8: the padding token is required.
        Assert.Throws<ArgumentException>(() => WindowAttentionCpu.Forward(p, qkv, [], bias, y));
        Assert.Throws<ArgumentException>(() => WindowAttentionUnfused.Forward(p, qkv, pad, [], y));
        var bad = p;
        bad.Shift = 4;
        Assert.Throws<ArgumentException>(() => bad.Validate());
        Assert.Throws<ArgumentException>(() => WindowAttentionParams.Sparse(1, 4, 4, 1, 8, 0).Validate());
    }
}
