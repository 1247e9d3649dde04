using GpuAnomaly.Kernels.Ternary;
using Xunit;

namespace GpuAnomaly.Tests.Ternary;

/// <summary>The 2-bit packing, the absmean quantizer and the per-token int8 quantizer.</summary>
public class TernaryCoreTests
{
    private static sbyte[] RandomTernary(Random rng, long n)
    {
        var v = new sbyte[n];
        for (long i = 0; i < n; i++) v[i] = (sbyte)(rng.Next(3) - 1);
        return v;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(33)]
    [InlineData(100)]
    public void PackRoundTrips(int k)
    {
        var rng = KernelLab.NewRng(out int seed);
        var v = RandomTernary(rng, 3 * k);
        var packed = TernaryPacking.Pack(v, 3, k);
        Assert.Equal(3 * TernaryPacking.Words(k), packed.Length);
        Assert.Null(TernaryPacking.Validate(packed, 3, k));
        Assert.True(v.AsSpan().SequenceEqual(TernaryPacking.Unpack(packed, 3, k)), $"seed {seed}, K={k}");
        // Padding is the zero code.
        int tail = k % 16;
        if (tail != 0) Assert.Equal(TernaryPacking.ZeroWord >> (2 * tail), packed[TernaryPacking.Words(k) - 1] >> (2 * tail));
    }

    [Fact]
    public void InvalidCodeAndBadPaddingAreRejectedWithTheirPosition()
    {
        var rng = KernelLab.NewRng(out _);
        int k = 37, words = TernaryPacking.Words(k);
        var packed = TernaryPacking.Pack(RandomTernary(rng, 3 * k), 3, k);
        var bad = (uint[])packed.Clone();
        bad[1 * words + 1] |= 3u << (2 * 2); // row 1, column 18
        Assert.Contains("invalid code 3 at row 1, column 18", TernaryPacking.Validate(bad, 3, k));
        var e = Assert.Throws<ArgumentException>(() => TernaryPacking.Unpack(bad, 3, k));
        Assert.Contains("row 1, column 18", e.Message);
        bad = (uint[])packed.Clone();
        bad[2 * words + 2] &= ~(3u << (2 * 7)); // row 2, word 2, position 7 (column 39 > K-1): code 0
        Assert.Contains("row 2: padding after column 36", TernaryPacking.Validate(bad, 3, k));
        Assert.Throws<ArgumentException>(() => TernaryPacking.Unpack(bad, 3, k));
        Assert.Throws<ArgumentException>(() => TernaryPacking.Pack(new sbyte[] { 0, 2 }, 1, 2));
        Assert.NotNull(TernaryPacking.Validate(packed.AsSpan(1), 3, k));
    }

    [Fact]
    public void QuantizerMatchesHandComputedValues()
    {
        // Row 0: mean |w| = 2, w / 2 = 0.5, 1.5, -0.5, 1.5 -> half to even 0, 2 (clamped 1), -0, 2 (1).
        // Row 1: mean |w| = 0.1 -> all 1 with a row scale; with the tensor scale (8 + 0.4) / 8 = 1.05 all 0.
        float[] w = [1, 3, -1, 3, 0.1f, 0.1f, 0.1f, 0.1f];
        var row = TernaryQuantizer.Quantize(w, 2, 4, TernaryScale.Row);
        Assert.Equal(new sbyte[] { 0, 1, 0, 1, 1, 1, 1, 1 }, row.Values);
        Assert.Equal(new[] { 2f, 0.1f }, row.Scales);
        Assert.Equal(TernaryScale.Row, row.Scale);
        var tensor = TernaryQuantizer.Quantize(w, 2, 4, TernaryScale.Tensor);
        Assert.Equal(new sbyte[] { 1, 1, -1, 1, 0, 0, 0, 0 }, tensor.Values);
        Assert.Equal(new[] { (float)(8.4 / 8) }, tensor.Scales);
        // gamma below 1e-5 divides by 1e-5: 6e-6 -> 0.6 -> 1, -3e-6 -> -0.3 -> 0 (by gamma itself they would be 1 and -1).
        var tiny = TernaryQuantizer.Quantize([1e-7f, -3e-6f, 6e-6f, 0f], 1, 4, TernaryScale.Tensor);
        Assert.Equal(new sbyte[] { 0, 0, 1, 0 }, tiny.Values);
        Assert.Equal((float)(((double)1e-7f + 3e-6f + 6e-6f) / 4), tiny.Scales[0]);
        Assert.Throws<ArgumentException>(() => TernaryQuantizer.Quantize([1f, float.NaN], 1, 2, TernaryScale.Tensor));
        Assert.Throws<ArgumentException>(() => TernaryQuantizer.Quantize([1f, float.PositiveInfinity], 1, 2, TernaryScale.Row));
        Assert.Throws<ArgumentException>(() => TernaryQuantizer.Quantize([1f, 2f, 3f], 2, 2, TernaryScale.Row));
    }

    [Fact]
    public void RelativeErrorIsTheWeightError()
    {
        float[] w = [1, 3, -1, 3];
        var t = TernaryQuantizer.Quantize(w, 1, 4, TernaryScale.Row); // 2 * [0, 1, 0, 1]: residual [1, 1, -1, 1]
        Assert.Equal(Math.Sqrt(4.0 / 20.0), TernaryQuantizer.RelativeError(w, t), 12);
        Assert.Equal(0, TernaryQuantizer.RelativeError([2, -2, 2, 2], TernaryQuantizer.Quantize([2, -2, 2, 2], 1, 4, TernaryScale.Tensor)));
    }

    [Fact]
    public void VectorizedTokenQuantizerIsBitIdentical()
    {
        var rng = KernelLab.NewRng(out int seed);
        // amax 127 gives s = 1: x * s lands on the ties .5 (half to even) and past the clamp.
        float[] ties = [127f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -127f, 3.5f, -3.5f, 0f];
        var cases = new List<float[]> { ties, new[] { 1e-7f, -2e-7f }, new[] { 0f, 0f, 0f } };
        for (int i = 0; i < 20; i++) cases.Add(KernelLab.RandomFloats(rng, 1 + rng.Next(300), (float)Math.Pow(10, rng.Next(-6, 4))));
        foreach (var x in cases)
        {
            var expected = new sbyte[x.Length];
            float s = TernaryLinearReference.QuantizeToken(x, expected);
            var q = new float[x.Length];
            Assert.Equal(s, TernaryLinearCpu.QuantizeToken(x, q));
            for (int i = 0; i < x.Length; i++) Assert.True(expected[i] == q[i], $"seed {seed}, length {x.Length}, element {i}: {q[i]} vs {expected[i]}");
        }
        var tq = new sbyte[ties.Length];
        TernaryLinearReference.QuantizeToken(ties, tq);
        Assert.Equal(new sbyte[] { 127, 0, 2, 2, 0, -2, -2, 126, -127, 4, -4, 0 }, tq);
    }
}
