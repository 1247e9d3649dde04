using System.Runtime.Intrinsics;
using GpuAnomaly.Engine;
using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Cpu;
using Xunit;

namespace GpuAnomaly.Tests.Conv;

public class Conv2dCpuTests
{
    private const double Tolerance = 1e-5;

    /// <summary>A random valid convolution: kernel 1..7, stride 1..3, dilation 1..3, asymmetric padding, groups 1/2/3/depthwise.</summary>
    private static Conv2dParams RandomParams(Random rng)
    {
        int groupsKind = rng.Next(5);
        int groups = groupsKind switch { 0 or 1 => 1, 2 => 2, 3 => 3, _ => 1 + rng.Next(8) };
        bool depthwise = groupsKind == 4;
        int cig = depthwise ? 1 : 1 + rng.Next(7);
        int cog = depthwise ? 1 + rng.Next(2) : 1 + rng.Next(21);
        int kh = 1 + rng.Next(7), kw = 1 + rng.Next(7);
        int dh = 1 + rng.Next(3), dw = 1 + rng.Next(3);
        if (kh * dh > 13) dh = 1;
        if (kw * dw > 13) dw = 1;
        var p = new Conv2dParams
        {
            N = 1 + rng.Next(3) * rng.Next(2) + rng.Next(2), CIn = cig * groups, COut = cog * groups,
            KH = kh, KW = kw, StrideH = 1 + rng.Next(3), StrideW = 1 + rng.Next(3),
            PadTop = rng.Next(4), PadLeft = rng.Next(4), PadBottom = rng.Next(4), PadRight = rng.Next(4),
            DilH = dh, DilW = dw, Groups = groups, HasBias = rng.Next(2),
            Act = (Activation)rng.Next(3), Slope = (float)(rng.NextDouble() * 0.3),
        };
        int needH = Math.Max(1, dh * (kh - 1) + 1 - p.PadTop - p.PadBottom);
        int needW = Math.Max(1, dw * (kw - 1) + 1 - p.PadLeft - p.PadRight);
        p.H = needH + rng.Next(20);
        p.W = needW + rng.Next(40);
        return p;
    }

    private static void Check(Conv2dParams p, Random rng, int seed, string context)
    {
        var x = KernelLab.RandomFloats(rng, p.InputElements);
        var w = KernelLab.RandomFloats(rng, p.WeightElements);
        var b = p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.COut) : [];
        var expected = new double[p.OutputElements];
        Conv2dReference.Forward(p, x, w, b, expected);
        var y = new float[p.OutputElements];
        KernelLab.Poison(y);
        Conv2dCpu.Forward(p, x, w, b, y);
        KernelLab.AssertClose(y, expected, Tolerance, $"seed {seed}, {context}: {p}");
    }

    [Fact]
    public void RandomShapesMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 70; i++) Check(RandomParams(rng), rng, seed, $"case {i}");
    }

    [Fact]
    public void Avx2MicroKernelMatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        Sgemm.ForceVector256 = true;
        try
        {
            for (int i = 0; i < 20; i++) Check(RandomParams(rng), rng, seed, $"AVX2 case {i}");
            Check(Conv2dParams.Create(2, 24, 13, 17, 30, 3, 3, padding: 1, act: Activation.Relu), rng, seed, "AVX2 larger");
        }
        finally { Sgemm.ForceVector256 = false; }
    }

    public static TheoryData<int, int, int, int, int, int, int, int, int> LargerShapes => new()
    {
        // n, cin, h, w, cout, k, stride, pad, groups
        { 1, 64, 19, 23, 64, 3, 1, 1, 1 },
        { 2, 3, 37, 41, 128, 6, 1, 0, 1 },
        { 3, 45, 11, 13, 37, 1, 1, 0, 1 },
        { 1, 256, 7, 9, 65, 1, 1, 0, 1 },
        { 2, 20, 17, 15, 33, 5, 2, 2, 1 },
        { 1, 300, 6, 5, 17, 3, 1, 1, 1 },
        { 1, 48, 21, 19, 48, 3, 2, 1, 48 },
        { 2, 32, 15, 14, 64, 3, 1, 1, 4 },
        { 1, 16, 20, 45, 32, 3, 1, 1, 16 },
        { 2, 8, 9, 33, 8, 5, 1, 2, 8 },
        // 1x1 stride 1 unpadded: B read in place (full panels) plus a packed tail panel, with groups and batches
        { 2, 40, 12, 20, 24, 1, 1, 0, 2 },
        { 1, 70, 8, 12, 33, 1, 1, 0, 1 },
        { 3, 300, 5, 37, 21, 1, 1, 0, 3 },
        // plane of 256 floats: packed (a multiple of 1 KB would thrash L1 sets)
        { 2, 64, 16, 16, 40, 1, 1, 0, 1 },
    };

    [Theory]
    [MemberData(nameof(LargerShapes))]
    public void LargerShapesMatchReference(int n, int cin, int h, int w, int cout, int k, int stride, int pad, int groups)
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var act in new[] { Activation.None, Activation.LeakyRelu })
            Check(Conv2dParams.Create(n, cin, h, w, cout, k, k, stride, pad, 1, groups, bias: act == Activation.None, act, 0.1f), rng, seed, "larger");
    }

    [Fact]
    public void PaddedInputPathMatchesReference()
    {
        // Stride 1, >= 32 channels per group: B read in place from the padded input, K in (tap, channel) order.
        var rng = KernelLab.NewRng(out int seed);
        var cases = new[]
        {
            Conv2dParams.Create(2, 37, 9, 21, 19, 3, 3, padding: 1, act: Activation.LeakyRelu, slope: 0.1f),
            Conv2dParams.Create(1, 150, 7, 20, 40, 5, 5, padding: 2),
            Conv2dParams.Create(1, 64, 13, 30, 24, 3, 3, dilation: 2, bias: false, act: Activation.Relu),
            Conv2dParams.Create(3, 96, 6, 33, 18, 2, 4, groups: 3),
            Conv2dParams.Create(1, 32, 16, 16, 8, 3, 3, padding: 3),
            Conv2dParams.Create(3, 40, 7, 9, 12, 3, 3, padding: 1, act: Activation.LeakyRelu, slope: 0.2f),
        };
        cases[4].PadTop = 0; cases[4].PadRight = 1;
        Conv2dCpu.DisableDirect = true; // the direct path takes these shapes on AVX-512 machines
        for (int i = 0; i < cases.Length; i++)
        {
            Assert.True(Conv2dCpu.UsesPaddedInput(cases[i]), cases[i].ToString());
            Sgemm.ForceVector256 = i == 1;
            if (i == 5) Conv2dCpu.PaddedChunkFloats = 1; // one image at a time
            try
            {
                Check(cases[i], rng, seed, $"padded input case {i}");
                var w = KernelLab.RandomFloats(rng, cases[i].WeightElements);
                using var packed = Conv2dCpu.PackWeights(cases[i], w);
                var strided = cases[i];
                strided.StrideW = 2; // same weight shape, other K order: the packed weights refuse it
                if (strided.OutW > 0) Assert.False(packed.Matches(strided));
            }
            finally
            {
                Sgemm.ForceVector256 = false;
                Conv2dCpu.PaddedChunkFloats = 1L << 24;
            }
        }
        Conv2dCpu.DisableDirect = false;
    }

    [Fact]
    public void DirectPathMatchesReference()
    {
        // Stride 1, ungrouped, AVX-512: B rows read in place through the (channel, tap) offset table, 32-pixel tiles
        // in y's order (straight, wrapping into the next row, partial at the plane's end).
        var rng = KernelLab.NewRng(out int seed);
        var cases = new List<Conv2dParams>
        {
            Conv2dParams.Create(3, 1, 28, 28, 16, 5, 5, padding: 16, act: Activation.LeakyRelu, slope: 0.005f), // a first layer
            Conv2dParams.Create(1, 16, 41, 43, 16, 5, 5, dilation: 2, act: Activation.LeakyRelu, slope: 0.1f),  // in place, tiles split
            Conv2dParams.Create(2, 16, 52, 52, 32, 5, 5, dilation: 8, bias: false),
            Conv2dParams.Create(5, 32, 31, 31, 128, 4, 4),                                                      // every tile wraps
            Conv2dParams.Create(1, 7, 9, 17, 13, 3, 2, padding: 1, act: Activation.Relu),                      // 13 rows: a partial panel
            Conv2dParams.Create(2, 3, 6, 16, 5, 2, 3, dilation: 2, padding: 2),                                // fewer pixels than a tile row
            Conv2dParams.Create(1, 200, 8, 20, 9, 3, 3, padding: 1),                                           // K = 1800: four K blocks
            Conv2dParams.Create(4, 5, 3, 64, 8, 3, 1, padding: 1),                                             // straight tiles only
        };
        var asym = Conv2dParams.Create(2, 1, 28, 28, 16, 6, 6, act: Activation.LeakyRelu, slope: 0.005f);
        asym.PadTop = asym.PadLeft = 8; asym.PadBottom = asym.PadRight = 7;
        cases.Add(asym);
        while (cases.Count < 16)
        {
            var p = RandomParams(rng);
            p.StrideH = p.StrideW = 1;
            p.CIn /= p.Groups;
            p.COut /= p.Groups;
            p.Groups = 1;
            p.W += 16;
            if (p.KH * p.KW > 1) cases.Add(p); // 1x1 layers read x in place through the GEMM path
        }
        if (!Vector512.IsHardwareAccelerated) return; // the path is AVX-512 only; the other tests cover the rest
        for (int i = 0; i < cases.Count; i++)
        {
            var p = cases[i];
            Conv2dCpu.DisableWinograd = true; // wide layers go to the Winograd path (Conv2dWinogradTests)
            Assert.True(Conv2dCpu.UsesDirect(p), p.ToString());
            if (i == 0) Conv2dCpu.PaddedChunkFloats = 1; // one image at a time
            try
            {
                Check(p, rng, seed, $"direct case {i}");
                // x in the middle of NaN: a stored output that read past x's planes would be NaN.
                var w = KernelLab.RandomFloats(rng, p.WeightElements);
                var b = p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.COut) : [];
                var x = KernelLab.RandomFloats(rng, p.InputElements);
                var framed = new float[x.Length + 4096];
                Array.Fill(framed, float.NaN);
                x.CopyTo(framed, 2048);
                using var packed = Conv2dCpu.PackWeights(p, w);
                var y = new float[p.OutputElements];
                KernelLab.Poison(y);
                Conv2dCpu.Forward(p, framed.AsSpan(2048, x.Length), packed, b, y);
                KernelLab.AssertClose(y, Reference(p, x, w, b), Tolerance, $"seed {seed}, direct case {i} packed: {p}");
                Conv2dCpu.DisableDirect = true;
                Assert.False(packed.Matches(p)); // packed for the direct path: the GEMM path refuses it
            }
            finally
            {
                Conv2dCpu.DisableDirect = false;
                Conv2dCpu.DisableWinograd = false;
                Conv2dCpu.PaddedChunkFloats = 1L << 24;
            }
        }
    }

    [Fact]
    public void DirectPathLeavesNarrowStridedAndGroupedLayersToGemm()
    {
        Assert.False(Conv2dCpu.UsesDirect(Conv2dParams.Create(1, 8, 20, 15, 8, 3, 3)));            // OutW 13 < 16
        Assert.False(Conv2dCpu.UsesDirect(Conv2dParams.Create(1, 8, 40, 40, 8, 3, 3, stride: 2)));
        Assert.False(Conv2dCpu.UsesDirect(Conv2dParams.Create(1, 8, 40, 40, 8, 3, 3, groups: 2)));
        Assert.False(Conv2dCpu.UsesDirect(Conv2dParams.Create(1, 8, 40, 40, 8, 1, 1)));
        Assert.Equal(Sgemm.Use512, Conv2dCpu.UsesDirect(Conv2dParams.Create(1, 8, 40, 40, 8, 3, 3)));
    }

    [Fact]
    public void AsymmetricPaddingAndEveryActivation()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var act in new[] { Activation.None, Activation.Relu, Activation.LeakyRelu })
        foreach (int groups in new[] { 1, 3, 12 })
        {
            var p = Conv2dParams.Create(2, 12, 14, 11, 24, 4, 4, groups: groups, act: act, slope: 0.2f);
            p.PadTop = 2; p.PadLeft = 1; p.PadBottom = 1; p.PadRight = 0;
            Check(p, rng, seed, "asymmetric pad");
        }
    }

    [Fact]
    public void DepthwiseDilatedAndStridedMatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var (k, stride, dil) in new[] { (3, 1, 2), (3, 2, 1), (5, 1, 3), (3, 1, 1) })
            Check(Conv2dParams.Create(2, 10, 13, 27, 20, k, k, stride, k / 2 * dil, dil, groups: 10, act: Activation.Relu), rng, seed, "depthwise");
    }

    [Fact]
    public void EngineCpuDeviceMatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var device = new CpuDevice();
        for (int i = 0; i < 4; i++)
        {
            var p = RandomParams(rng);
            var x = KernelLab.RandomFloats(rng, p.InputElements);
            var w = KernelLab.RandomFloats(rng, p.WeightElements);
            var b = p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.COut) : [];
            var expected = new double[p.OutputElements];
            Conv2dReference.Forward(p, x, w, b, expected);
            using var tx = device.FromHost(x, new Shape(p.N, p.CIn, p.H, p.W));
            using var tw = device.FromHost(w, new Shape(p.COut, p.CInPerGroup, p.KH, p.KW));
            using var tb = p.HasBias != 0 ? device.FromHost(b, new Shape(p.COut)) : null;
            var y = KernelLab.RunOnDevice(device, p.OutputElements, () => tx, ty => device.Conv2d(p, tx, tw, tb, ty));
            KernelLab.AssertClose(y, expected, Tolerance, $"seed {seed}, engine case {i}: {p}");
        }
    }

    private static double[] Reference(in Conv2dParams p, float[] x, float[] w, float[] b)
    {
        var expected = new double[p.OutputElements];
        Conv2dReference.Forward(p, x, w, b, expected);
        return expected;
    }

    [Fact]
    public void PackedWeightsReusedAcrossCallsWithDifferentInputs()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 16; i++)
        {
            Sgemm.ForceVector256 = i % 4 == 3;
            try
            {
                var p = i == 0 ? Conv2dParams.Create(2, 64, 9, 11, 70, 3, 3, padding: 1, act: Activation.LeakyRelu, slope: 0.1f) : RandomParams(rng);
                var w = KernelLab.RandomFloats(rng, p.WeightElements);
                using var packed = Conv2dCpu.PackWeights(p, w);
                Assert.True(packed.Matches(p));
                for (int call = 0; call < 3; call++)
                {
                    var x = KernelLab.RandomFloats(rng, p.InputElements);
                    var b = p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.COut) : [];
                    var y = new float[p.OutputElements];
                    KernelLab.Poison(y);
                    Conv2dCpu.Forward(p, x, packed, b, y);
                    KernelLab.AssertClose(y, Reference(p, x, w, b), Tolerance, $"seed {seed}, packed case {i} call {call} avx2={Sgemm.ForceVector256}: {p}");
                }
            }
            finally { Sgemm.ForceVector256 = false; }
        }
    }

    [Fact]
    public void PackedWeightsRejectOtherShapesAndDisposal()
    {
        var p = Conv2dParams.Create(1, 8, 6, 7, 16, 3, 3, padding: 1, bias: false);
        var x = new float[p.InputElements];
        var y = new float[p.OutputElements];
        var packed = Conv2dCpu.PackWeights(p, new float[p.WeightElements]);
        var other = Conv2dParams.Create(1, 8, 6, 7, 24, 3, 3, padding: 1, bias: false);
        Assert.False(packed.Matches(other));
        Assert.Throws<ArgumentException>(() => Conv2dCpu.Forward(other, x, packed, [], new float[other.OutputElements]));
        Assert.Throws<ArgumentException>(() => Conv2dCpu.PackWeights(p, new float[p.WeightElements - 1]));
        if (Sgemm.Use512)
        {
            // Packed for the AVX-512 micro-kernel: the AVX2 one needs another layout.
            Sgemm.ForceVector256 = true;
            try { Assert.Throws<ArgumentException>(() => Conv2dCpu.Forward(p, x, packed, [], y)); }
            finally { Sgemm.ForceVector256 = false; }
        }
        packed.Dispose();
        Assert.True(packed.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => Conv2dCpu.Forward(p, x, packed, [], y));
    }

    [Fact]
    public void EngineCpuDevicePacksConstantWeightsOnce()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var device = new CpuDevice();
        var p = Conv2dParams.Create(1, 24, 10, 13, 40, 3, 3, padding: 1, act: Activation.Relu);
        var w = KernelLab.RandomFloats(rng, p.WeightElements);
        var b = KernelLab.RandomFloats(rng, p.COut);
        var wShape = new Shape(p.COut, p.CInPerGroup, p.KH, p.KW);
        using var tb = device.FromHost(b, new Shape(p.COut));
        float[] Run(Tensor tw, float[] x)
        {
            using var tx = device.FromHost(x, new Shape(p.N, p.CIn, p.H, p.W));
            return KernelLab.RunOnDevice(device, p.OutputElements, () => tx, ty => device.Conv2d(p, tx, tw, tb, ty));
        }

        // Weights that may change are packed on every call: a rewrite is always seen, nothing is cached.
        using (var tw = device.FromHost(w, wShape))
        {
            var x = KernelLab.RandomFloats(rng, p.InputElements);
            KernelLab.AssertClose(Run(tw, x), Reference(p, x, w, b), Tolerance, $"seed {seed}, mutable weights");
            var w2 = KernelLab.RandomFloats(rng, p.WeightElements);
            tw.CopyFrom(w2);
            KernelLab.AssertClose(Run(tw, x), Reference(p, x, w2, b), Tolerance, $"seed {seed}, mutable weights rewritten");
            Assert.Equal(0, device.ConvWeightPacks);
        }

        // Constant weights (a graph's) are packed once, then reused with fresh inputs; they refuse rewrites.
        using (var tw = device.FromHost(w, wShape).MarkConstant())
        {
            for (int call = 0; call < 3; call++)
            {
                var x = KernelLab.RandomFloats(rng, p.InputElements);
                KernelLab.AssertClose(Run(tw, x), Reference(p, x, w, b), Tolerance, $"seed {seed}, constant weights call {call}");
            }
            Assert.Equal(1, device.ConvWeightPacks);
            Assert.Throws<InvalidOperationException>(() => tw.CopyFrom(w));

            // The same block seen as another layer's weights (same element count) gets its own pack.
            var q = Conv2dParams.Create(1, 40, 10, 13, 24, 3, 3, padding: 1, bias: false);
            var xq = KernelLab.RandomFloats(rng, q.InputElements);
            using var txq = device.FromHost(xq, new Shape(q.N, q.CIn, q.H, q.W));
            var tq = tw.Reshape(new Shape(q.COut, q.CInPerGroup, q.KH, q.KW)).MarkConstant();
            var yq = KernelLab.RunOnDevice(device, q.OutputElements, () => txq, ty => device.Conv2d(q, txq, tq, null, ty));
            KernelLab.AssertClose(yq, Reference(q, xq, w, []), Tolerance, $"seed {seed}, same block, other shape");
            Assert.Equal(2, device.ConvWeightPacks);
        }

        // Two constant weight tensors in one memory block (different offsets): separate packs.
        var w1 = KernelLab.RandomFloats(rng, p.WeightElements);
        var w3 = KernelLab.RandomFloats(rng, p.WeightElements);
        using var block = device.FromHost([.. w1, .. w3], new Shape(2 * (int)p.WeightElements));
        var t1 = block.Slice(0, wShape, DType.F32).MarkConstant();
        var t3 = block.Slice(p.WeightElements * sizeof(float), wShape, DType.F32).MarkConstant();
        var x3 = KernelLab.RandomFloats(rng, p.InputElements);
        for (int round = 0; round < 2; round++)
        {
            KernelLab.AssertClose(Run(t1, x3), Reference(p, x3, w1, b), Tolerance, $"seed {seed}, shared block slice 1");
            KernelLab.AssertClose(Run(t3, x3), Reference(p, x3, w3, b), Tolerance, $"seed {seed}, shared block slice 2");
        }
        Assert.Equal(4, device.ConvWeightPacks);
    }

    [Fact]
    public void WrongBufferSizesThrow()
    {
        var p = Conv2dParams.Create(2, 4, 9, 8, 6, 3, 3, padding: 1);
        var x = new float[p.InputElements];
        var w = new float[p.WeightElements];
        var b = new float[p.COut];
        var y = new float[p.OutputElements];
        Assert.Throws<ArgumentException>(() => Conv2dCpu.Forward(p, x.AsSpan(1), w, b, y));
        Assert.Throws<ArgumentException>(() => Conv2dCpu.Forward(p, x, w.AsSpan(1), b, y));
        Assert.Throws<ArgumentException>(() => Conv2dCpu.Forward(p, x, w, b.AsSpan(1), y));
        var e = Assert.Throws<ArgumentException>(() => Conv2dCpu.Forward(p, x, w, b, y.AsSpan(1)));
        Assert.Contains("conv2d", e.Message);
        var bad = p;
        bad.Groups = 3;
        Assert.Throws<ArgumentException>(() => Conv2dCpu.Forward(bad, x, w, b, y));
    }

    [Fact]
    public void SgemmMatchesFloat64Reference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 24; i++)
        {
            Sgemm.ForceVector256 = i % 4 == 3;
            try
            {
                int m = 1 + rng.Next(i < 20 ? 70 : 300), n = 1 + rng.Next(i < 20 ? 90 : 700), k = 1 + rng.Next(i < 20 ? 80 : 600);
                int lda = k + rng.Next(3), ldb = n + rng.Next(3), ldc = n + rng.Next(3);
                var a = KernelLab.RandomFloats(rng, (long)m * lda);
                var b = KernelLab.RandomFloats(rng, (long)k * ldb);
                var c = new float[(long)m * ldc];
                KernelLab.Poison(c);
                Sgemm.Multiply(m, n, k, a, lda, b, ldb, c, ldc);
                var got = new float[m * n];
                var expected = new double[m * n];
                for (int r = 0; r < m; r++)
                for (int j = 0; j < n; j++)
                {
                    double acc = 0;
                    for (int p = 0; p < k; p++) acc += (double)a[r * lda + p] * b[p * ldb + j];
                    expected[r * n + j] = acc;
                    got[r * n + j] = c[r * ldc + j];
                }
                KernelLab.AssertClose(got, expected, Tolerance, $"seed {seed}, sgemm case {i}: m={m} n={n} k={k} lda={lda} ldb={ldb} ldc={ldc} avx2={Sgemm.ForceVector256}");
            }
            finally { Sgemm.ForceVector256 = false; }
        }
    }
}
