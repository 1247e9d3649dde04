using GpuAnomaly.Kernels.Ternary;
using Xunit;

namespace GpuAnomaly.Tests.Ternary;

/// <summary>TernaryLinearCpu against the float64 reference on every SIMD path (the path switches are static: one class).</summary>
public class TernaryLinearCpuTests
{
    private const double Tolerance = 1e-5;

    private static readonly (string Name, bool V256, bool Scalar)[] Paths = [("avx512", false, false), ("avx2", true, false), ("scalar", false, true)];

    private static sbyte[] RandomTernary(Random rng, long n)
    {
        var v = new sbyte[n];
        for (long i = 0; i < n; i++) v[i] = (sbyte)(rng.Next(3) - 1);
        return v;
    }

    private static void Check(TernaryLinearParams p, Random rng, int seed, string context)
    {
        var x = KernelLab.RandomFloats(rng, p.InputElements, (float)Math.Pow(10, rng.Next(-2, 3)));
        var w = RandomTernary(rng, (long)p.N * p.K);
        var packed = TernaryPacking.Pack(w, p.N, p.K);
        var scale = KernelLab.RandomFloats(rng, p.ScaleElements);
        var bias = p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.N) : [];
        var expected = TernaryLinearReference.Forward(p, x, w, scale, bias);
        var magnitude = Magnitude(p, x, w, scale, bias);
        int[]? acc = p.Activations == TernaryActivations.A8 ? TernaryLinearReference.AccumulateA8(p, x, w, out _) : null;
        var y = new float[p.OutputElements];
        try
        {
            foreach (var (name, v256, scalar) in Paths)
            {
                TernaryLinearCpu.ForceVector256 = v256;
                TernaryLinearCpu.ForceScalar = scalar;
                KernelLab.Poison(y);
                TernaryLinearCpu.Forward(p, x, packed, scale, bias, y);
                KernelLab.AssertCloseToMagnitude(y, expected, magnitude, Tolerance, $"seed {seed}, {context}, {name}: {p}");
                if (acc is null) continue;
                var got = TernaryLinearCpu.AccumulateA8(p, x, packed, out var s);
                Assert.True(acc.AsSpan().SequenceEqual(got), $"seed {seed}, {context}, {name}: A8 accumulators differ, {p}");
                var sRef = new float[p.M];
                var q = new sbyte[p.K];
                for (int m = 0; m < p.M; m++) sRef[m] = TernaryLinearReference.QuantizeToken(x.AsSpan(m * p.K, p.K), q);
                Assert.Equal(sRef, s);
            }
        }
        finally
        {
            TernaryLinearCpu.ForceVector256 = TernaryLinearCpu.ForceScalar = false;
        }
    }

    /// <summary>
    /// The reference on absolute values: the size of each output's terms, for <see cref="KernelLab.AssertCloseToMagnitude"/>
    /// (A8 too: absmax quantization is symmetric, so |x| quantizes to |q|).
    /// </summary>
    internal static double[] Magnitude(in TernaryLinearParams p, float[] x, sbyte[] w, float[] scale, float[] bias) =>
        TernaryLinearReference.Forward(p, x.Select(MathF.Abs).ToArray(), w.Select(v => (sbyte)Math.Abs(v)).ToArray(),
            scale.Select(MathF.Abs).ToArray(), bias.Select(MathF.Abs).ToArray());

    [Fact]
    public void RandomShapesMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 64; i++)
        {
            int m = i % 4 == 0 ? 1 : 1 + rng.Next(40);
            int n = 1 + 2 * rng.Next(35); // odd
            int k = i % 8 == 1 ? 1 + rng.Next(15) : 1 + rng.Next(700);
            if (i % 8 == 2) k = 16 * (1 + rng.Next(40)); // whole words
            var p = TernaryLinearParams.Create(m, n, k, rng.Next(2) == 0 ? TernaryScale.Tensor : TernaryScale.Row,
                rng.Next(2) == 0, i % 2 == 0 ? TernaryActivations.A32 : TernaryActivations.A8);
            Check(p, rng, seed, $"case {i}");
        }
    }

    [Fact]
    public void ThreadedGemvAndBatchMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var act in new[] { TernaryActivations.A32, TernaryActivations.A8 })
        {
            Check(TernaryLinearParams.Create(1, 515, 1000, TernaryScale.Row, true, act), rng, seed, "gemv");
            Check(TernaryLinearParams.Create(11, 203, 530, TernaryScale.Tensor, false, act), rng, seed, "batch");
        }
    }

    [Fact]
    public void A8SaturatedTokensStayExact()
    {
        // Rows of all +1 or all -1 against tokens of all +-127: the largest int16 pair sums (2 * 2 * 127 per pair, with
        // c = w + 1 = 2), over K = 2600 (more than the 8 blocks summed in int16 before widening).
        var rng = KernelLab.NewRng(out int seed);
        var p = TernaryLinearParams.Create(3, 5, 2600, TernaryScale.Tensor, false, TernaryActivations.A8);
        var x = new float[p.InputElements];
        for (int i = 0; i < x.Length; i++) x[i] = i < p.K ? 1f : i < 2 * p.K ? -1f : (i / 7 % 2 == 0 ? 1f : -1f);
        var w = new sbyte[p.N * p.K];
        for (int i = 0; i < w.Length; i++) w[i] = (sbyte)(i / p.K % 2 == 0 ? 1 : -1);
        var packed = TernaryPacking.Pack(w, p.N, p.K);
        var expected = TernaryLinearReference.AccumulateA8(p, x, w, out _);
        foreach (var (name, v256, scalar) in Paths)
        {
            TernaryLinearCpu.ForceVector256 = v256;
            TernaryLinearCpu.ForceScalar = scalar;
            try { Assert.True(expected.AsSpan().SequenceEqual(TernaryLinearCpu.AccumulateA8(p, x, packed, out _)), $"seed {seed}, {name}"); }
            finally { TernaryLinearCpu.ForceVector256 = TernaryLinearCpu.ForceScalar = false; }
        }
    }

    [Fact]
    public void BadBuffersAreRejectedWithTheirShapes()
    {
        var p = TernaryLinearParams.Create(2, 3, 20);
        var x = new float[40];
        var w = new uint[6];
        var e = Assert.Throws<ArgumentException>(() => TernaryLinearCpu.Forward(p, x, w, new float[1], new float[3], new float[5]));
        Assert.Contains("y=[2, 3]", e.Message);
        e = Assert.Throws<ArgumentException>(() => TernaryLinearCpu.Forward(p, x, new uint[5], new float[1], new float[3], new float[6]));
        Assert.Contains("w=[3, 2] words", e.Message);
        Assert.Throws<ArgumentException>(() => TernaryLinearCpu.Forward(p, x.AsSpan(1), w, new float[1], new float[3], new float[6]));
        Assert.Throws<ArgumentException>(() => TernaryLinearCpu.Forward(p, x, w, new float[3], new float[3], new float[6]));
        Assert.Throws<ArgumentException>(() => TernaryLinearCpu.Forward(p, x, w, new float[1], [], new float[6]));
        Assert.Throws<ArgumentException>(() => TernaryLinearCpu.Forward(TernaryLinearParams.Create(0, 3, 20), [], w, new float[1], new float[3], []));
    }
}
