using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;
using ILGPU;
using Xunit;
using Xunit.Abstractions;

namespace GpuAnomaly.Tests.Conv;

/// <summary>
/// The ILGPU Conv2d kernels on ILGPU's CPU emulator against the float64 reference. Shapes are
/// random but small (the emulator runs each GPU thread in turn): kernel 1..7, stride 1..3,
/// dilation 1..3, asymmetric padding, groups 1 / 2 / depthwise, bias on and off, every activation.
/// </summary>
public class Conv2dGpuTests(IlgpuCpuFixture fixture, ITestOutputHelper output) : IClassFixture<IlgpuCpuFixture>
{
    private const double Tolerance = 1e-5;
    private const int ShapesPerTest = 50;
    private readonly IlgpuDevice _device = fixture.Device;

    private enum Kernel { Direct, DirectWide, ImplicitGemm, ImplicitGemmLarge, Forward }

    [Fact]
    public void Direct_MatchesReference_RandomShapes() => RunRandomShapes(Kernel.Direct);

    [Fact]
    public void DirectWide_MatchesReference_RandomShapes() => RunRandomShapes(Kernel.DirectWide);

    [Fact]
    public void ImplicitGemm_MatchesReference_RandomShapes() => RunRandomShapes(Kernel.ImplicitGemm);

    /// <summary>Few cases: each 128x128 tile is 256 emulated threads doing 64 outputs each.</summary>
    [Fact]
    public void ImplicitGemmLarge_MatchesReference_RandomShapes() => RunRandomShapes(Kernel.ImplicitGemmLarge, 6);

    /// <summary>
    /// M, N and K each span more than one tile (128, 128, 8) and none is a multiple of it; stride,
    /// dilation and asymmetric padding on the second case.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void ImplicitGemmLarge_MultiTileEdges(int groups)
    {
        var rng = KernelLab.NewRng(out int seed);
        // COut/g = 131 (2 row tiles), N*OH*OW = 2*9*8 = 144 (2 column tiles), K = 3*3*3 = 27 (4 steps).
        var p = groups == 1
            ? Conv2dParams.Create(2, 3, 9, 8, 131, 3, 3, padding: 1, act: Activation.LeakyRelu, slope: 0.2f)
            : new Conv2dParams
            {
                N = 2, CIn = 2 * groups, H = 19, W = 17, COut = 131 * groups, KH = 3, KW = 2,
                StrideH = 2, StrideW = 2, PadTop = 2, PadLeft = 0, PadBottom = 1, PadRight = 3,
                DilH = 2, DilW = 3, Groups = groups, HasBias = 1, Act = Activation.Relu,
            };
        Check(Kernel.ImplicitGemmLarge, p, rng, seed);
    }

    /// <summary>Forward's choice of the 128x128 GEMM follows the H100 measurements in <see cref="Conv2dGpu.PrefersLarge"/>.</summary>
    [Fact]
    public void PrefersLarge_OnlyForLargeGemms()
    {
        Assert.True(Conv2dGpu.PrefersLarge(Conv2dParams.Create(1, 128, 266, 266, 256, 5, 5)));
        Assert.False(Conv2dGpu.PrefersLarge(Conv2dParams.Create(1, 128, 140, 140, 256, 5, 5, dilation: 2)));
        Assert.False(Conv2dGpu.PrefersLarge(Conv2dParams.Create(8, 64, 56, 56, 64, 3, 3, padding: 1)));
        Assert.False(Conv2dGpu.PrefersLarge(Conv2dParams.Create(8, 128, 56, 56, 128, 3, 3, padding: 1, groups: 128)));
    }

    /// <summary>A depthwise conv as Forward runs it, with rows that are not a multiple of the 4 outputs per thread.</summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    public void Forward_Depthwise_UsesDirectWide(int batch, int stride)
    {
        var rng = KernelLab.NewRng(out int seed);
        var p = Conv2dParams.Create(batch, 6, 13, 11, 12, 3, 3, stride: stride, padding: 1, groups: 6, act: Activation.LeakyRelu, slope: 0.1f);
        Assert.True(Conv2dGpu.PrefersDirect(p));
        Check(Kernel.DirectWide, p, rng, seed);
        Check(Kernel.Forward, p, rng, seed);
    }

    [Fact]
    public void Forward_ThroughDevice_MatchesReference_RandomShapes() => RunRandomShapes(Kernel.Forward);

    /// <summary>M, N and K each span more than one tile (64, 64, 16) and none is a multiple of it.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void ImplicitGemm_MultiTileEdges(int groups)
    {
        var rng = KernelLab.NewRng(out int seed);
        // COut/g = 70 (2 row tiles), N*OH*OW = 2*5*8 = 80 (2 column tiles), K = 9*3*3 = 81 (6 steps).
        var p = Conv2dParams.Create(2, 9 * groups, 5, 8, 70 * groups, 3, 3, padding: 1, groups: groups,
            act: Activation.LeakyRelu, slope: 0.2f);
        Assert.False(Conv2dGpu.PrefersDirect(p));
        Check(Kernel.ImplicitGemm, p, rng, seed);
        Check(Kernel.Forward, p, rng, seed);
    }

    [Fact]
    public void MismatchedViewLength_Throws()
    {
        var p = Conv2dParams.Create(1, 3, 6, 5, 4, 3, 3, padding: 1);
        using var x = _device.Allocate(new Shape(checked((int)p.InputElements)));
        using var xShort = _device.Allocate(new Shape(checked((int)p.InputElements - 1)));
        using var w = _device.Allocate(new Shape(checked((int)p.WeightElements)));
        using var b = _device.Allocate(new Shape(p.COut));
        using var y = _device.Allocate(new Shape(checked((int)p.OutputElements)));
        using var yLong = _device.Allocate(new Shape(checked((int)p.OutputElements + 1)));
        var conv = _device.ConvKernels;
        var e = Assert.Throws<ArgumentException>(() => conv.Direct(p, xShort.View<float>(), w.View<float>(), b.View<float>(), y.View<float>()));
        Assert.Contains("conv2d direct", e.Message);
        e = Assert.Throws<ArgumentException>(() => conv.ImplicitGemm(p, x.View<float>(), w.View<float>(), b.View<float>(), yLong.View<float>()));
        Assert.Contains("conv2d implicit_gemm", e.Message);
        Assert.Throws<ArgumentException>(() => conv.Forward(p, x.View<float>(), w.View<float>(), default, y.View<float>()));
        Assert.Throws<ArgumentException>(() => conv.ImplicitGemm(p, x.View<float>(), b.View<float>(), b.View<float>(), y.View<float>()));
    }


    private void RunRandomShapes(Kernel kernel, int shapes = ShapesPerTest)
    {
        var rng = KernelLab.NewRng(out int seed);
        var sw = Stopwatch.StartNew();
        int direct = 0;
        for (int i = 0; i < shapes; i++)
        {
            var p = RandomShape(rng, i, kernel);
            if (Conv2dGpu.PrefersDirect(p)) direct++;
            Check(kernel, p, rng, seed);
        }
        output.WriteLine($"{kernel}: {shapes} shapes ({direct} prefer direct) in {sw.Elapsed.TotalSeconds:F1} s, seed {seed}");
    }

    /// <summary>
    /// A small random convolution: case i cycles groups (1, 2, depthwise), then activation, then bias (all 18 combinations)
    /// and alternates batch 1 with batch 2..3. GEMM cases get more channels per group so that M
    /// and K are not trivial (and Forward takes the GEMM path in a fair share of cases).
    /// </summary>
    private static Conv2dParams RandomShape(Random rng, int i, Kernel kernel)
    {
        while (true)
        {
            int kh = rng.Next(1, 8), kw = rng.Next(1, 8);
            int dilH = rng.Next(1, 4), dilW = rng.Next(1, 4);
            int groups, cIn, cOut;
            switch (i % 3)
            {
                case 0:
                    groups = 1;
                    cIn = rng.Next(1, kernel is Kernel.Direct or Kernel.DirectWide ? 5 : 9);
                    cOut = rng.Next(1, kernel is Kernel.Direct or Kernel.DirectWide ? 7 : 41);
                    break;
                case 1:
                    groups = 2;
                    cIn = 2 * rng.Next(1, 4);
                    cOut = 2 * rng.Next(1, kernel is Kernel.Direct or Kernel.DirectWide ? 4 : 12);
                    break;
                default:
                    cIn = rng.Next(1, 6);
                    groups = cIn;
                    cOut = cIn * rng.Next(1, 3);
                    break;
            }
            var p = new Conv2dParams
            {
                N = i % 2 == 0 ? 1 : rng.Next(2, 4),
                CIn = cIn, COut = cOut, KH = kh, KW = kw,
                StrideH = rng.Next(1, 4), StrideW = rng.Next(1, 4),
                PadTop = rng.Next(0, 4), PadBottom = rng.Next(0, 4), PadLeft = rng.Next(0, 4), PadRight = rng.Next(0, 4),
                DilH = dilH, DilW = dilW, Groups = groups,
                HasBias = (i / 9) % 2,
                Act = (Activation)((i / 3) % 3),
                Slope = (float)(0.01 + rng.NextDouble() * 0.3),
            };
            // Odd sizes, never smaller than the dilated kernel minus the padding.
            p.H = Math.Max(1, dilH * (kh - 1) + 1 - p.PadTop - p.PadBottom) + rng.Next(0, 9);
            p.W = Math.Max(1, dilW * (kw - 1) + 1 - p.PadLeft - p.PadRight) + rng.Next(0, 9);
            long k = (long)p.CInPerGroup * kh * kw;
            if (p.OutputElements is >= 8 and <= 2500 && k <= (kernel is Kernel.Direct or Kernel.DirectWide ? 120 : 200) && p.InputElements <= 4000)
            {
                // Every third Forward case must take the GEMM path, so both of Forward's choices are covered.
                if (kernel == Kernel.Forward && i % 3 == 0 && Conv2dGpu.PrefersDirect(p)) continue;
                return p;
            }
        }
    }

    private void Check(Kernel kernel, Conv2dParams p, Random rng, int seed)
    {
        var x = KernelLab.RandomFloats(rng, p.InputElements);
        var w = KernelLab.RandomFloats(rng, p.WeightElements);
        var bias = p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.COut) : [];
        var expected = new double[p.OutputElements];
        Conv2dReference.Forward(p, x, w, bias, expected);

        using var xt = _device.FromHost(x, new Shape(p.N, p.CIn, p.H, p.W));
        using var wt = _device.FromHost(w, new Shape(p.COut, p.CInPerGroup, p.KH, p.KW));
        using var bt = p.HasBias != 0 ? _device.FromHost(bias, new Shape(p.COut)) : null;
        var actual = KernelLab.RunOnDevice(_device, p.OutputElements, () => xt, y =>
        {
            var bv = bt is null ? default : bt.View<float>();
            switch (kernel)
            {
                case Kernel.Direct: _device.ConvKernels.Direct(p, xt.View<float>(), wt.View<float>(), bv, y.View<float>()); break;
                case Kernel.DirectWide: _device.ConvKernels.DirectWide(p, xt.View<float>(), wt.View<float>(), bv, y.View<float>()); break;
                case Kernel.ImplicitGemm: _device.ConvKernels.ImplicitGemm(p, xt.View<float>(), wt.View<float>(), bv, y.View<float>()); break;
                case Kernel.ImplicitGemmLarge: _device.ConvKernels.ImplicitGemmLarge(p, xt.View<float>(), wt.View<float>(), bv, y.View<float>()); break;
                default: _device.Conv2d(p, xt, wt, bt, y); break;
            }
        });
        KernelLab.AssertClose(actual, expected, Tolerance, $"conv2d {kernel} {p} seed {seed}");
    }
}
