using GpuAnomaly.Engine;
using GpuAnomaly.Models.MemoryBank;
using Xunit;

namespace GpuAnomaly.Tests.MemoryBank;

/// <summary>The feature stage against a float64 reference written from the definitions (blur, crop, 3x3 mean, bilinear, position).</summary>
public class MemoryBankFeaturesTests
{
    private static MemoryBankConfig Config(int c, int h, int w, FeatureSource[] f, bool local, double pos) =>
        new(c, h, w, f, local, pos, ImageAggregation.Mean, 9, 4, null, null, null, null, null);

    [Fact]
    public void PixelPatches_MatchBlurAndCropReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var dev = new CpuDevice();
        for (int t = 0; t < 12; t++)
        {
            int c = rng.Next(2) == 0 ? 1 : 3, h = rng.Next(5, 20), w = rng.Next(5, 20), b = rng.Next(1, 4);
            int p = rng.Next(1, Math.Min(h, w) + 1), s = rng.Next(1, 5);
            double blur = rng.Next(3) == 0 ? 0 : 0.3 + 1.5 * rng.NextDouble();
            bool local = rng.Next(2) == 0;
            double pos = rng.Next(2) == 0 ? 0 : 0.5;
            var config = Config(c, h, w, [new FeatureSource(FeatureSource.Pixels, p, s, blur, 0)], local, pos);
            using var f = new MemoryBankFeatures(config, null, dev, b);
            var x = KernelLab.RandomFloats(rng, (long)b * c * h * w);
            var tokens = f.Extract(x);
            var expected = Reference(x, b, c, h, w, p, s, blur, local, pos);
            string ctx = $"seed {seed} case {t}: c={c} {h}x{w} b={b} p={p} s={s} blur={blur:F2} local={local} pos={pos}";
            Assert.Equal(expected.Length, tokens.Length);
            KernelLab.AssertClose(tokens, expected, 1e-5, ctx);
        }
    }

    private static double[] Reference(float[] x, int b, int c, int h, int w, int p, int s, double blur, bool local, double pos)
    {
        int r = blur > 0 ? (int)Math.Ceiling(3 * blur) : 0;
        var g = new double[2 * r + 1];
        for (int i = -r; i <= r; i++) g[i + r] = blur > 0 ? Math.Exp(-0.5 * i * i / (blur * blur)) : 1;
        double gs = g.Sum();
        double Blurred(int n, int ch, int y, int xx)
        {
            double v = 0;
            for (int a = -r; a <= r; a++)
                for (int e = -r; e <= r; e++)
                {
                    int yy = y + a, xc = xx + e;
                    if (yy < 0 || yy >= h || xc < 0 || xc >= w) continue;
                    v += g[a + r] / gs * g[e + r] / gs * x[((n * c + ch) * h + yy) * w + xc];
                }
            return v;
        }
        int gh = (h - p) / s + 1, gw = (w - p) / s + 1, dc = c * p * p, d = dc + (pos > 0 ? 2 : 0);
        var map = new double[b, dc, gh, gw];
        for (int n = 0; n < b; n++)
            for (int ch = 0; ch < c; ch++)
                for (int u = 0; u < p; u++)
                    for (int v = 0; v < p; v++)
                        for (int gy = 0; gy < gh; gy++)
                            for (int gx = 0; gx < gw; gx++)
                                map[n, (ch * p + u) * p + v, gy, gx] = Blurred(n, ch, gy * s + u, gx * s + v);
        if (local)
        {
            var pooled = new double[b, dc, gh, gw];
            for (int n = 0; n < b; n++)
                for (int k = 0; k < dc; k++)
                    for (int gy = 0; gy < gh; gy++)
                        for (int gx = 0; gx < gw; gx++)
                        {
                            double sum = 0;
                            for (int a = -1; a <= 1; a++)
                                for (int e = -1; e <= 1; e++)
                                    if (gy + a >= 0 && gy + a < gh && gx + e >= 0 && gx + e < gw) sum += map[n, k, gy + a, gx + e];
                            pooled[n, k, gy, gx] = sum / 9; // count_include_pad
                        }
            map = pooled;
        }
        var tokens = new double[(long)b * gh * gw * d];
        for (int n = 0; n < b; n++)
            for (int gy = 0; gy < gh; gy++)
                for (int gx = 0; gx < gw; gx++)
                {
                    long row = ((long)n * gh * gw + gy * gw + gx) * d;
                    for (int k = 0; k < dc; k++) tokens[row + k] = map[n, k, gy, gx];
                    if (pos > 0)
                    {
                        tokens[row + dc] = (gy + 0.5) * pos * h / gh;
                        tokens[row + dc + 1] = (gx + 0.5) * pos * w / gw;
                    }
                }
        return tokens;
    }

    [Fact]
    public void TwoSources_AreResizedToTheLargestGridAndConcatenated()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var dev = new CpuDevice();
        int h = 16, w = 12, b = 2;
        var small = new FeatureSource(FeatureSource.Pixels, 8, 4, 0, 0);  // 3 x 2 grid
        var large = new FeatureSource(FeatureSource.Pixels, 2, 2, 0, 0);  // 8 x 6 grid
        using var f = new MemoryBankFeatures(Config(1, h, w, [small, large], false, 0), null, dev, b);
        using var fs = new MemoryBankFeatures(Config(1, h, w, [small], false, 0), null, dev, b);
        Assert.Equal((8, 6, 64 + 4), (f.GridH, f.GridW, f.Dims));
        var x = KernelLab.RandomFloats(rng, b * h * w);
        var tokens = f.Extract(x);
        var coarse = fs.Extract(x);
        // Channel k of the coarse source, bilinearly resized, lands in columns 0..63 of every fine cell.
        var plane = new float[3 * 2];
        var resized = new float[8 * 6];
        for (int n = 0; n < b; n++)
            for (int k = 0; k < 64; k++)
            {
                for (int j = 0; j < 6; j++) plane[j] = coarse[(n * 6 + j) * 64 + k];
                Bilinear.Resize(plane, 3, 2, resized, 8, 6);
                for (int j = 0; j < 48; j++)
                    Assert.True(Math.Abs(tokens[(n * 48 + j) * 68 + k] - resized[j]) <= 1e-6f, $"seed {seed}: n={n} k={k} cell {j}");
            }
        // The fine source's last channel at cell (y, x) is the pixel (2y + 1, 2x + 1).
        for (int n = 0; n < b; n++)
            for (int y = 0; y < 8; y++)
                for (int xx = 0; xx < 6; xx++)
                    Assert.Equal(x[(n * h + 2 * y + 1) * w + 2 * xx + 1], tokens[(n * 48 + y * 6 + xx) * 68 + 67]);
    }

    [Fact]
    public void Bilinear_MatchesAlignCornersFalse()
    {
        // F.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), size=(4, 4), mode="bilinear", align_corners=False)
        var dst = new float[16];
        Bilinear.Resize([1, 2, 3, 4], 2, 2, dst, 4, 4);
        float[] expected = [1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4];
        Assert.Equal(expected, dst);
    }

    [Theory]
    [InlineData("pixels:20/8/1", 20, 8, 1.0)]
    [InlineData("pixels:5/1", 5, 1, 1.0)]
    [InlineData("pixels:3/2/0", 3, 2, 0.0)]
    public void ParseSpec_Pixels(string spec, int patch, int stride, double blur)
    {
        var f = FeatureSource.ParseSpec(spec);
        Assert.Equal((FeatureSource.Pixels, patch, stride, blur), (f.Kind, f.Patch, f.Stride, f.Blur));
        Assert.Equal(f, FeatureSource.ParseSpec(f.ToString()));
    }

    [Theory]
    [InlineData("pixels")]
    [InlineData("pixels:0/1")]
    [InlineData("pixels:3/-1")]
    [InlineData("pixels:3/1/-2")]
    [InlineData("teacher:")]
    [InlineData("resnet:18")]
    public void ParseSpec_RejectsBadSpecs(string spec) => Assert.Throws<FormatException>(() => FeatureSource.ParseSpec(spec));

    [Fact]
    public void PatchLargerThanTheImage_IsAClearError()
    {
        using var dev = new CpuDevice();
        var e = Assert.Throws<ArgumentException>(() => new MemoryBankFeatures(Config(1, 8, 8, [new FeatureSource(FeatureSource.Pixels, 9, 1, 0, 0)], false, 0), null, dev, 1));
        Assert.Contains("does not fit", e.Message);
    }
}
