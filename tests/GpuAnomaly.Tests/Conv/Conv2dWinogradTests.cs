using System.Runtime.Intrinsics;
using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;
using Xunit;

namespace GpuAnomaly.Tests.Conv;

/// <summary>The Winograd F(2x2, r x r) path of Conv2dCpu (Conv2dCpu.Winograd.cs) against the float64 reference.</summary>
public class Conv2dWinogradTests
{
    private const double Tolerance = 1e-5;

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Transform1D_EqualsTheCorrelation(int r)
    {
        var rng = KernelLab.NewRng(out int seed);
        var t = new WinogradTransform(2, r);
        for (int trial = 0; trial < 20; trial++)
        {
            var g = Enumerable.Range(0, r).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
            var d = Enumerable.Range(0, t.Alpha).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
            var y = t.Correlate1D(g, d);
            for (int i = 0; i < 2; i++)
            {
                double want = 0;
                for (int k = 0; k < r; k++) want += g[k] * d[i + k];
                Assert.True(Math.Abs(y[i] - want) <= 1e-12, $"seed {seed}, F(2, {r}) output {i}: {y[i]} vs {want}");
            }
        }
    }

    [Fact]
    public void Transform2D_FilterEqualsTheOuterProductOfG()
    {
        var rng = KernelLab.NewRng(out int seed);
        var t = new WinogradTransform(2, 3);
        var g = KernelLab.RandomFloats(rng, 9);
        var u = new double[16];
        t.TransformFilter(g, u);
        for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
        {
            double want = 0;
            for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                want += t.G[i, a] * g[a * 3 + b] * t.G[j, b];
            Assert.True(Math.Abs(u[i * 4 + j] - want) <= 1e-12, $"seed {seed}: U[{i},{j}]");
        }
    }

    [Fact]
    public void Bt6_EqualsTheGeneratedMatrix()
    {
        var rng = KernelLab.NewRng(out int seed);
        var t = new WinogradTransform(2, 5);
        var x = new Vector512<float>[6];
        for (int j = 0; j < 6; j++) x[j] = Vector512.Create(KernelLab.RandomFloats(rng, 16));
        Conv2dCpu.Bt6(x[0], x[1], x[2], x[3], x[4], x[5], out var o0, out var o1, out var o2, out var o3, out var o4, out var o5);
        var o = new[] { o0, o1, o2, o3, o4, o5 };
        for (int a = 0; a < 6; a++)
        for (int lane = 0; lane < 16; lane++)
        {
            double want = 0;
            for (int j = 0; j < 6; j++) want += t.BT[a, j] * x[j][lane];
            Assert.True(Math.Abs(o[a][lane] - want) <= 1e-5 * (1 + Math.Abs(want)), $"seed {seed}: row {a} lane {lane}: {o[a][lane]} vs {want}");
        }
    }

    public static IEnumerable<object[]> Cases()
    {
        // (case, params): every kernel size, dilations 1-4, padding (symmetric, asymmetric, none), batch 1-3, partial
        // 8-row panels, two K blocks, phases whose tiles end mid-unit.
        yield return [0, Conv2dParams.Create(1, 64, 20, 23, 64, 5, 5, padding: 2, act: Activation.LeakyRelu, slope: 0.005f)];
        yield return [1, Conv2dParams.Create(2, 72, 33, 41, 68, 4, 4, dilation: 2)];
        yield return [2, Conv2dParams.Create(3, 64, 19, 30, 64, 3, 3, padding: 3, dilation: 3, act: Activation.Relu, bias: false)];
        yield return [3, Conv2dParams.Create(1, 64, 45, 44, 72, 3, 3, dilation: 4, act: Activation.LeakyRelu, slope: 0.2f)];
        yield return [4, Conv2dParams.Create(1, 600, 12, 18, 64, 3, 3, padding: 1)];
        yield return [5, Conv2dParams.Create(2, 80, 17, 17, 96, 5, 5, dilation: 1)];
        yield return [7, Conv2dParams.Create(3, 32, 31, 31, 128, 4, 4, act: Activation.LeakyRelu, slope: 0.005f)]; // the US p17.3 layer
        var asym = Conv2dParams.Create(1, 64, 22, 25, 64, 4, 4, act: Activation.LeakyRelu, slope: 0.1f);
        asym.PadTop = 2; asym.PadLeft = 1; asym.PadBottom = 1; asym.PadRight = 2;
        yield return [6, asym];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void WinogradPathMatchesReference(int index, Conv2dParams p)
    {
        if (!Vector512.IsHardwareAccelerated) return; // AVX-512 only; the other conv tests cover the rest
        Assert.True(Conv2dCpu.UsesWinograd(p), p.ToString());
        Assert.False(Conv2dCpu.UsesDirect(p));
        var rng = KernelLab.NewRng(out int seed);
        var x = KernelLab.RandomFloats(rng, p.InputElements);
        var w = KernelLab.RandomFloats(rng, p.WeightElements);
        var b = p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.COut) : [];
        var expected = new double[p.OutputElements];
        Conv2dReference.Forward(p, x, w, b, expected);
        if (index == 1) Conv2dCpu.PaddedChunkFloats = 1; // one image at a time
        try
        {
            // Unpacked weights (transformed per call).
            var y = new float[p.OutputElements];
            KernelLab.Poison(y);
            Conv2dCpu.Forward(p, x, w, b, y);
            KernelLab.AssertClose(y, expected, Tolerance, $"seed {seed}, winograd case {index}: {p}");

            // Packed weights, x in the middle of NaN: a stored output that read outside x would be NaN.
            var framed = new float[x.Length + 4096];
            Array.Fill(framed, float.NaN);
            x.CopyTo(framed, 2048);
            using var packed = Conv2dCpu.PackWeights(p, w);
            KernelLab.Poison(y);
            Conv2dCpu.Forward(p, framed.AsSpan(2048, x.Length), packed, b, y);
            KernelLab.AssertClose(y, expected, Tolerance, $"seed {seed}, winograd case {index} packed: {p}");

            Conv2dCpu.DisableWinograd = true;
            Assert.False(packed.Matches(p)); // transformed for the Winograd path: the others refuse it
        }
        finally
        {
            Conv2dCpu.DisableWinograd = false;
            Conv2dCpu.PaddedChunkFloats = 1L << 24;
        }
    }

    [Fact]
    public void WinogradPathTakesOnlyWideSquareStrideOneLayers()
    {
        bool avx512 = Vector512.IsHardwareAccelerated;
        Assert.Equal(avx512, Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 64, 40, 40, 64, 3, 3)));
        Assert.False(Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 16, 40, 40, 64, 3, 3)));            // few input channels
        Assert.False(Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 64, 40, 40, 48, 3, 3)));            // few output channels
        Assert.False(Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 64, 40, 40, 64, 3, 3, stride: 2)));
        Assert.False(Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 64, 40, 40, 64, 1, 1)));
        Assert.False(Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 64, 40, 40, 64, 7, 7)));
        Assert.False(Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 64, 40, 40, 64, 2, 2)));
        Assert.False(Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 64, 40, 40, 64, 3, 5)));
        Assert.False(Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 64, 40, 40, 64, 3, 3, groups: 2)));
        Assert.False(Conv2dCpu.UsesWinograd(Conv2dParams.Create(1, 64, 12, 40, 64, 3, 3, dilation: 4))); // phases 1 row high
    }
}
