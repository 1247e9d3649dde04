using System.Diagnostics;
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
