using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Ternary;
using ILGPU;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace GpuAnomaly.Tests.Ternary;

/// <summary>
/// The ILGPU ternary kernels (GEMV, tiled GEMM, A8 quantizer and integer paths, implicit-GEMM conv)
/// on ILGPU's CPU emulator (warp size 4) against the float64 / int references. Small random shapes:
/// odd N, K not a multiple of 16, M = 1 and &gt; 1, both scale modes, bias on and off; outputs
/// poisoned with NaN; A8 accumulators compared exactly.
/// </summary>
public class TernaryGpuTests : IClassFixture<IlgpuCpuFixture>, IDisposable
{
    private const double Tolerance = 1e-5;
    private readonly IlgpuDevice _device;
    private readonly Accelerator _acc;
    private readonly ITestOutputHelper _output;
    private readonly TernaryLinearGpu _linear;
    private readonly TernaryConv2dGpu _conv;

    public TernaryGpuTests(IlgpuCpuFixture fixture, ITestOutputHelper output)
    {
        _device = fixture.Device;
        _acc = _device.Accelerator;
        _output = output;
        _linear = new TernaryLinearGpu(_acc);
        _conv = new TernaryConv2dGpu(_acc);
    }

    public void Dispose()
    {
        _linear.Dispose();
        _conv.Dispose();
    }

    public enum Path { Forward, Gemv, Gemm }

    [Theory]
    [InlineData(Path.Gemv, TernaryActivations.A32)]
    [InlineData(Path.Gemm, TernaryActivations.A32)]
    [InlineData(Path.Forward, TernaryActivations.A32)]
    [InlineData(Path.Gemv, TernaryActivations.A8)]
    [InlineData(Path.Gemm, TernaryActivations.A8)]
    [InlineData(Path.Forward, TernaryActivations.A8)]
    public void Linear_MatchesReference_RandomShapes(Path path, TernaryActivations act)
    {
        var rng = KernelLab.NewRng(out int seed);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 10; i++)
        {
            int m = path switch
            {
                Path.Gemv => i % 2 == 0 ? 1 : rng.Next(2, 6),
                Path.Gemm => i % 2 == 0 ? rng.Next(1, 8) : rng.Next(60, 80),
                _ => i % 2 == 0 ? rng.Next(1, 5) : rng.Next(5, 70),
            };
            int n = rng.Next(1, 40) * 2 - 1 + (i == 9 ? 64 : 0); // odd, one case past a 64-row tile
            int k = i switch { 0 => 1, 1 => 16, 2 => 64, 3 => rng.Next(520, 800), _ => rng.Next(2, 160) }; // case 3: several K strides of the GEMV's 8 warps
            var p = TernaryLinearParams.Create(m, n, k, i % 3 == 0 ? TernaryScale.Row : TernaryScale.Tensor, bias: i % 2 == 1, activations: act);
            CheckLinear(path, p, rng, seed);
        }
        _output.WriteLine($"{path} {act}: 10 shapes in {sw.Elapsed.TotalSeconds:F1} s, seed {seed}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LinearA8_Accumulators_AreExact(bool gemm)
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 8; i++)
        {
            int m = gemm ? rng.Next(1, 70) : rng.Next(1, 5);
            int n = rng.Next(1, 40) * 2 - 1, k = i == 0 ? 3 : rng.Next(1, 200);
            var p = TernaryLinearParams.Create(m, n, k, activations: TernaryActivations.A8);
            var x = KernelLab.RandomFloats(rng, p.InputElements, (float)Math.Exp(rng.NextDouble() * 6 - 3));
            var w = RandomTernary(rng, (long)n * k);
            var expected = TernaryLinearReference.AccumulateA8(p, x, w, out _);
            using var xb = _acc.Allocate1D(x);
            using var wb = _acc.Allocate1D(TernaryPacking.Pack(w, n, k));
            using var ab = _acc.Allocate1D(Enumerable.Repeat(int.MinValue, (int)p.OutputElements).ToArray());
            _linear.AccumulateA8(p, xb.View, wb.View, ab.View, gemm);
            _acc.Synchronize();
            Assert.True(expected.SequenceEqual(ab.GetAsArray1D()), $"A8 accumulators differ (gemm={gemm}, {p}, seed {seed})");
        }
    }

    /// <summary>
    /// The GEMV at every split of K (1 to MaxWarps warps a group; with the emulator's 4-lane warps one warp is fewer
    /// threads than rows): A32 against the float64 reference, A8 accumulators exactly.
    /// </summary>
    [Fact]
    public void Gemv_EveryWarpCount_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        try
        {
            for (int warps = 1; warps <= TernaryGemvKernel.MaxWarps; warps++)
            {
                _linear.GemvWarps = warps;
                int n = rng.Next(1, 20) * 2 - 1, k = rng.Next(1, 300), m = rng.Next(1, 5);
                CheckLinear(Path.Gemv, TernaryLinearParams.Create(m, n, k, TernaryScale.Row, bias: true), rng, seed);
                var p = TernaryLinearParams.Create(m, n, k, activations: TernaryActivations.A8);
                var x = KernelLab.RandomFloats(rng, p.InputElements);
                var w = RandomTernary(rng, (long)n * k);
                var expected = TernaryLinearReference.AccumulateA8(p, x, w, out _);
                using var xb = _acc.Allocate1D(x);
                using var wb = _acc.Allocate1D(TernaryPacking.Pack(w, n, k));
                using var ab = _acc.Allocate1D(Enumerable.Repeat(int.MinValue, (int)p.OutputElements).ToArray());
                _linear.AccumulateA8(p, xb.View, wb.View, ab.View, gemm: false);
                _acc.Synchronize();
                Assert.True(expected.SequenceEqual(ab.GetAsArray1D()), $"A8 accumulators differ at {warps} warps ({p}, seed {seed})");
            }
            Assert.Throws<ArgumentOutOfRangeException>(() => _linear.GemvWarps = 0);
            Assert.Throws<ArgumentOutOfRangeException>(() => _linear.GemvWarps = TernaryGemvKernel.MaxWarps + 1);
        }
        finally
        {
            _linear.GemvWarps = TernaryGemvKernel.DefaultWarps;
        }
    }

    /// <summary>Ties after x * s (s = 1 exactly when amax = 127) must round to even, like MathF.Round(ToEven).</summary>
    [Fact]
    public void Quantize_RoundsHalfToEven_AndMatchesQuantizeToken()
    {
        var rng = KernelLab.NewRng(out int seed);
        float[] ties = [127f, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f, -1.5f, 126.5f, -2.5f, 3.5f, 0.49999997f, -126.5f, 4.5f, 5.5f, 6.5f, -7.5f, 8.5f];
        var rows = new List<float[]> { ties, KernelLab.RandomFloats(rng, 37, 3f), KernelLab.RandomFloats(rng, 37, 1e-7f) };
        foreach (var row in rows) CheckQuantize(row, seed);
        CheckQuantize([.. rows[1], .. rows[2], .. KernelLab.RandomFloats(rng, 37, 100f)], seed, tokens: 3);
    }

    private void CheckQuantize(float[] x, int seed, int tokens = 1)
    {
        int k = x.Length / tokens;
        var p = TernaryLinearParams.Create(tokens, 1, k, activations: TernaryActivations.A8);
        int words = p.KWords;
        using var xb = _acc.Allocate1D(x);
        using var qb = _acc.Allocate1D<int>((long)tokens * words * 4);
        using var sb = _acc.Allocate1D<float>(tokens);
        using var qs = _acc.Allocate1D<int>(tokens);
        _linear.Quantize(p, xb.View, qb.View, sb.View, qs.View);
        _acc.Synchronize();
        var q = qb.GetAsArray1D();
        var s = sb.GetAsArray1D();
        var sums = qs.GetAsArray1D();
        var expected = new sbyte[k];
        for (int m = 0; m < tokens; m++)
        {
            float se = TernaryLinearReference.QuantizeToken(x.AsSpan(m * k, k), expected);
            Assert.Equal(BitConverter.SingleToInt32Bits(se), BitConverter.SingleToInt32Bits(s[m]));
            for (int c = 0; c < words * 16; c++)
            {
                int word = c / 16, j = c % 16;
                int got = (sbyte)(q[(m * words + word) * 4 + j % 4] >> (8 * (j / 4)));
                Assert.True((c < k ? expected[c] : 0) == got, $"token {m} position {c}: {got} vs {(c < k ? expected[c] : 0)} (x={(c < k ? x[m * k + c] : 0)}, seed {seed})");
            }
            Assert.Equal(expected.Sum(v => (int)v), sums[m]);
        }
    }

    [Theory]
    [InlineData(TernaryActivations.A32)]
    [InlineData(TernaryActivations.A8)]
    public void Conv2d_MatchesReference_RandomShapes(TernaryActivations act)
    {
        var rng = KernelLab.NewRng(out int seed);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 10; i++) CheckConv(RandomConv(rng, i, act), rng, seed);
        _output.WriteLine($"conv {act}: 10 shapes in {sw.Elapsed.TotalSeconds:F1} s, seed {seed}");
    }

    /// <summary>1x1 (K = CIn/groups), grouped and a channel count past one 64-row tile, A32 and A8 accumulators.</summary>
    [Fact]
    public void Conv2d_OneByOne_Groups_AndA8Accumulators()
    {
        var rng = KernelLab.NewRng(out int seed);
        var oneByOne = Conv2dParams.Create(2, 21, 5, 3, 9, 1, 1, act: Activation.Relu);
        var grouped = Conv2dParams.Create(1, 6, 7, 6, 134, 3, 2, stride: 2, padding: 1, groups: 2, act: Activation.LeakyRelu, slope: 0.2f);
        foreach (var c in new[] { oneByOne, grouped })
        foreach (var act in new[] { TernaryActivations.A32, TernaryActivations.A8 })
            CheckConv(TernaryConv2dParams.Create(c, TernaryScale.Row, act), rng, seed);

        var p = TernaryConv2dParams.Create(new Conv2dParams
        {
            N = 2, CIn = 4, H = 9, W = 7, COut = 6, KH = 3, KW = 2, StrideH = 1, StrideW = 2, PadTop = 2, PadLeft = 0,
            PadBottom = 1, PadRight = 3, DilH = 2, DilW = 1, Groups = 2, HasBias = 1,
        }, activations: TernaryActivations.A8);
        var x = KernelLab.RandomFloats(rng, p.Conv.InputElements, 5f);
        var w = RandomTernary(rng, p.Conv.WeightElements);
        var expected = TernaryConv2dReference.AccumulateA8(p, x, w, out _);
        using var xb = _acc.Allocate1D(x);
        using var wb = _acc.Allocate1D(TernaryPacking.Pack(w, p.Conv.COut, p.K));
        using var ab = _acc.Allocate1D(Enumerable.Repeat(int.MinValue, expected.Length).ToArray());
        _conv.AccumulateA8(p, xb.View, wb.View, ab.View);
        _acc.Synchronize();
        Assert.True(expected.SequenceEqual(ab.GetAsArray1D()), $"conv A8 accumulators differ ({p}, seed {seed})");
    }


    [Fact]
    public void MismatchedViews_Throw()
    {
        var p = TernaryLinearParams.Create(2, 5, 20);
        using var x = _acc.Allocate1D<float>(p.InputElements);
        using var w = _acc.Allocate1D<uint>(p.WeightWords);
        using var s = _acc.Allocate1D<float>(1);
        using var b = _acc.Allocate1D<float>(p.N);
        using var y = _acc.Allocate1D<float>(p.OutputElements + 1);
        var e = Assert.Throws<ArgumentException>(() => _linear.Forward(p, x.View, w.View, s.View, b.View, y.View));
        Assert.Contains("ternary_linear gemv", e.Message);
        var c = TernaryConv2dParams.Create(Conv2dParams.Create(1, 3, 5, 5, 4, 3, 3));
        e = Assert.Throws<ArgumentException>(() => _conv.Forward(c, x.View, w.View, s.View, b.View, y.View));
        Assert.Contains("ternary_conv2d", e.Message);
    }

    private static TernaryConv2dParams RandomConv(Random rng, int i, TernaryActivations act)
    {
        while (true)
        {
            int kh = rng.Next(1, 5), kw = rng.Next(1, 5);
            int groups = i % 3 == 1 ? 2 : 1;
            var c = new Conv2dParams
            {
                N = i % 2 == 0 ? 1 : 2,
                CIn = groups * rng.Next(1, 6), COut = groups * rng.Next(1, 12), KH = kh, KW = kw,
                StrideH = rng.Next(1, 3), StrideW = rng.Next(1, 4), DilH = rng.Next(1, 3), DilW = rng.Next(1, 3),
                PadTop = rng.Next(0, 3), PadBottom = rng.Next(0, 3), PadLeft = rng.Next(0, 3), PadRight = rng.Next(0, 3),
                Groups = groups, HasBias = i % 2, Act = (Activation)(i % 3), Slope = 0.1f,
            };
            c.H = Math.Max(1, c.DilH * (kh - 1) + 1 - c.PadTop - c.PadBottom) + rng.Next(0, 7);
            c.W = Math.Max(1, c.DilW * (kw - 1) + 1 - c.PadLeft - c.PadRight) + rng.Next(0, 7);
            if (c.OutputElements is >= 4 and <= 1500)
                return TernaryConv2dParams.Create(c, i % 2 == 0 ? TernaryScale.Row : TernaryScale.Tensor, act);
        }
    }

    private void CheckConv(TernaryConv2dParams p, Random rng, int seed)
    {
        var c = p.Conv;
        var x = KernelLab.RandomFloats(rng, c.InputElements);
        var w = RandomTernary(rng, c.WeightElements);
        var scale = RandomScales(rng, p.ScaleElements);
        var bias = c.HasBias != 0 ? KernelLab.RandomFloats(rng, c.COut) : [];
        var expected = TernaryConv2dReference.Forward(p, x, w, scale, bias);
        using var xb = _acc.Allocate1D(x);
        using var wb = _acc.Allocate1D(TernaryPacking.Pack(w, c.COut, p.K));
        using var sb = _acc.Allocate1D(scale);
        using var bb = _acc.Allocate1D(c.HasBias != 0 ? bias : [0f]);
        using var yb = _acc.Allocate1D(Poisoned(c.OutputElements));
        _conv.Forward(p, xb.View, wb.View, sb.View, c.HasBias != 0 ? bb.View : default, yb.View);
        _acc.Synchronize();
        KernelLab.AssertClose(yb.GetAsArray1D(), expected, Tolerance, $"ternary conv2d ({p}), seed {seed}");
    }

    private void CheckLinear(Path path, TernaryLinearParams p, Random rng, int seed)
    {
        var x = KernelLab.RandomFloats(rng, p.InputElements);
        var w = RandomTernary(rng, (long)p.N * p.K);
        var scale = RandomScales(rng, p.ScaleElements);
        var bias = p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.N) : [];
        var expected = TernaryLinearReference.Forward(p, x, w, scale, bias);
        using var xb = _acc.Allocate1D(x);
        using var wb = _acc.Allocate1D(TernaryPacking.Pack(w, p.N, p.K));
        using var sb = _acc.Allocate1D(scale);
        using var bb = _acc.Allocate1D(p.HasBias != 0 ? bias : [0f]);
        using var yb = _acc.Allocate1D(Poisoned(p.OutputElements));
        var biasView = p.HasBias != 0 ? bb.View : default;
        switch (path)
        {
            case Path.Gemv: _linear.Gemv(p, xb.View, wb.View, sb.View, biasView, yb.View); break;
            case Path.Gemm: _linear.Gemm(p, xb.View, wb.View, sb.View, biasView, yb.View); break;
            default: _linear.Forward(p, xb.View, wb.View, sb.View, biasView, yb.View); break;
        }
        _acc.Synchronize();
        KernelLab.AssertCloseToMagnitude(yb.GetAsArray1D(), expected, TernaryLinearCpuTests.Magnitude(p, x, w, scale, bias), Tolerance,
            $"ternary linear {path} ({p}), seed {seed}");
    }

    private static float[] Poisoned(long n)
    {
        var y = new float[n];
        KernelLab.Poison(y);
        return y;
    }

    /// <summary>Positive scales around BitNet's magnitudes (gamma = mean |W|).</summary>
    private static float[] RandomScales(Random rng, int n)
    {
        var s = new float[n];
        for (int i = 0; i < n; i++) s[i] = (float)(0.01 + rng.NextDouble() * 0.2);
        return s;
    }

    private static sbyte[] RandomTernary(Random rng, long n)
    {
        var w = new sbyte[n];
        for (long i = 0; i < n; i++) w[i] = (sbyte)rng.Next(-1, 2);
        return w;
    }
}
