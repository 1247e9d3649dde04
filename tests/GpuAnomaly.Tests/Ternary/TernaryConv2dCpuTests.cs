using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Ternary;
using Xunit;

namespace GpuAnomaly.Tests.Ternary;

public class TernaryConv2dCpuTests
{
    private const double Tolerance = 1e-5;

    private static Conv2dParams RandomConv(Random rng)
    {
        int kind = rng.Next(5);
        int groups = kind switch { 0 or 1 => 1, 2 => 2, 3 => 3, _ => 1 + rng.Next(6) };
        int cig = kind == 4 ? 1 : 1 + rng.Next(9);
        int cog = 1 + rng.Next(kind == 4 ? 2 : 13);
        int kh = 1 + rng.Next(5), kw = 1 + rng.Next(5), dh = 1 + rng.Next(3), dw = 1 + rng.Next(3);
        var p = new Conv2dParams
        {
            N = 1 + rng.Next(3), CIn = cig * groups, COut = cog * groups, KH = kh, KW = kw,
            StrideH = 1 + rng.Next(3), StrideW = 1 + rng.Next(3),
            PadTop = rng.Next(3), PadLeft = rng.Next(3), PadBottom = rng.Next(3), PadRight = rng.Next(3),
            DilH = dh, DilW = dw, Groups = groups, HasBias = rng.Next(2),
            Act = (Activation)rng.Next(3), Slope = (float)(rng.NextDouble() * 0.3),
        };
        p.H = Math.Max(1, dh * (kh - 1) + 1 - p.PadTop - p.PadBottom) + rng.Next(14);
        p.W = Math.Max(1, dw * (kw - 1) + 1 - p.PadLeft - p.PadRight) + rng.Next(20);
        return p;
    }

    private static void Check(TernaryConv2dParams p, Random rng, int seed, string context)
    {
        var c = p.Conv;
        var x = KernelLab.RandomFloats(rng, c.InputElements);
        var w = new sbyte[c.WeightElements];
        for (int i = 0; i < w.Length; i++) w[i] = (sbyte)(rng.Next(3) - 1);
        var packed = TernaryPacking.Pack(w, c.COut, p.K);
        var scale = KernelLab.RandomFloats(rng, p.ScaleElements);
        var bias = c.HasBias != 0 ? KernelLab.RandomFloats(rng, c.COut) : [];
        var expected = TernaryConv2dReference.Forward(p, x, w, scale, bias);
        var y = new float[c.OutputElements];
        KernelLab.Poison(y);
        TernaryConv2dCpu.Forward(p, x, packed, scale, bias, y);
        KernelLab.AssertClose(y, expected, Tolerance, $"seed {seed}, {context}: {p}");
        using var cached = TernaryConv2dCpu.PackWeights(p, packed);
        KernelLab.Poison(y);
        TernaryConv2dCpu.Forward(p, x, cached, scale, bias, y);
        KernelLab.AssertClose(y, expected, Tolerance, $"seed {seed}, {context}, cached: {p}");
    }

    [Fact]
    public void RandomShapesMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 44; i++)
            Check(TernaryConv2dParams.Create(RandomConv(rng), rng.Next(2) == 0 ? TernaryScale.Tensor : TernaryScale.Row,
                i % 2 == 0 ? TernaryActivations.A32 : TernaryActivations.A8), rng, seed, $"case {i}");
    }

    [Fact]
    public void WideLayersMatchReference()
    {
        // 64 input channels, stride 1: the padded-input GEMM path, with threads.
        var rng = KernelLab.NewRng(out int seed);
        var conv = Conv2dParams.Create(2, 64, 12, 13, 24, 3, 3, padding: 1, act: Activation.Relu);
        foreach (var act in new[] { TernaryActivations.A32, TernaryActivations.A8 })
            Check(TernaryConv2dParams.Create(conv, TernaryScale.Row, act), rng, seed, act.ToString());
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        var p = TernaryConv2dParams.Create(Conv2dParams.Create(1, 2, 5, 5, 3, 3, 3));
        var x = new float[50];
        var w = new uint[3 * 2]; // K = 18: 2 words per row
        var e = Assert.Throws<ArgumentException>(() => TernaryConv2dCpu.Forward(p, x, w, new float[1], new float[3], new float[8]));
        Assert.Contains("y=8", e.Message);
        Assert.Throws<ArgumentException>(() => TernaryConv2dCpu.Forward(p, x, new uint[5], new float[1], new float[3], new float[9]));
        // All-zero words hold code 0 (-1) in the padding: rejected with the row.
        e = Assert.Throws<ArgumentException>(() => TernaryConv2dCpu.PackWeights(p, w));
        Assert.Contains("row 0", e.Message);
        var big = TernaryConv2dParams.Create(Conv2dParams.Create(1, 1 << 15, 1, 1, 1, 1, 5, padding: 2), activations: TernaryActivations.A8);
        e = Assert.Throws<ArgumentException>(() => TernaryConv2dCpu.Forward(big, new float[1 << 15], new uint[big.WeightWords], new float[1], new float[1], new float[1]));
        Assert.Contains("A8", e.Message);
    }
}
