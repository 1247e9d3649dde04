using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Pool;
using ILGPU;
using ILGPU.Runtime;
using Xunit;
using Device = GpuAnomaly.Engine.Device;

namespace GpuAnomaly.Tests.Pool;

/// <summary>
/// MaxPool2d / AvgPool2d: the cpu kernel, the ILGPU kernel on ilgpu-cpu, and the engine's
/// Device.Pool2d on both devices, each over fresh random shapes against the float64 reference.
/// Max pooling must be exact (it only selects); average pooling within relative L2 1e-5.
/// </summary>
public class Pool2dTests : IClassFixture<IlgpuCpuFixture>
{
    private const int Cases = 50;
    /// <summary>ilgpu-cpu emulates every thread: keep its shapes to a few thousand outputs.</summary>
    private const int EmulatorMaxOutputs = 2500;
    private readonly IlgpuDevice _ilgpu;

    public Pool2dTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    public static TheoryData<PoolKind> Kinds => new() { PoolKind.Max, PoolKind.Avg };

    [Theory, MemberData(nameof(Kinds))]
    public void CpuKernel_MatchesReference(PoolKind kind)
    {
        var rng = KernelLab.NewRng(out int seed);
        // The sweep plus shapes large enough for the multi-threaded path (>= 16k outputs), the dense-extraction
        // 2x2 / stride 1, and stride 2.
        var shapes = Enumerable.Range(0, Cases).Select(_ => RandomParams(rng, kind, maxSide: 70, maxOutputs: 60_000)).ToList();
        shapes.Add(Pool2dParams.Create(kind, 2, 8, 57, 61, kernel: 2, stride: 1));
        shapes.Add(Pool2dParams.Create(kind, 1, 3, 113, 131, kernel: 3, stride: 1, padding: 1, countIncludePad: false));
        shapes.Add(Pool2dParams.Create(kind, 3, 5, 45, 67, kernel: 3, stride: 2, padding: 1));
        shapes.Add(Pool2dParams.Create(kind, 2, 4, 31, 37, kernel: 2)); // MaxPool2d(2): the stride-2 deinterleaving path
        foreach (var p in shapes)
            Check(p, rng, seed, x =>
            {
                var y = new float[p.OutputElements];
                KernelLab.Poison(y);
                Pool2dCpu.Forward(p, x, y);
                return y;
            });
    }

    /// <summary>
    /// The dense-extraction fast path (max, 2x2, stride 1, no padding: the Uninformed Students pools) over random
    /// dilations (unequal in H and W), widths from one vector to several with odd tails, batch 1-3, serial and
    /// multi-threaded; NaN inputs must give NaN exactly where the window holds one.
    /// </summary>
    [Fact]
    public void CpuKernel_DenseMax2x2_MatchesReference_AndPropagatesNaN()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int t = 0; t < 40; t++)
        {
            int dh = rng.Next(1, 9), dw = rng.Next(1, 9);
            int ow = t < 4 ? 16 + t : rng.Next(16, 90), oh = rng.Next(1, 40);
            var p = Pool2dParams.Create(PoolKind.Max, rng.Next(1, 4), rng.Next(1, 7), oh + dh, ow + dw, kernel: 2, stride: 1, dilation: 1);
            p.DilH = dh;
            p.DilW = dw;
            p.Validate();
            Assert.Equal(ow, p.OutW);
            var x = KernelLab.RandomFloats(rng, p.InputElements);
            bool nan = t % 3 == 0;
            // Each NaN at the top-left tap of a random output's window: with dh > oh some input rows lie in no
            // window, so a NaN dropped anywhere could reach no output and the NaN check below would test nothing.
            if (nan)
                for (int i = 0; i < 5; i++)
                {
                    int plane = rng.Next(p.N * p.C), oy = rng.Next(p.OutH), ox = rng.Next(p.OutW);
                    x[((long)plane * p.H + oy) * p.W + ox] = float.NaN;
                }
            var expected = new double[p.OutputElements];
            Pool2dReference.Forward(p, x, expected);
            var y = new float[p.OutputElements];
            KernelLab.Poison(y);
            Pool2dCpu.Forward(p, x, y);
            for (int i = 0; i < y.Length; i++)
            {
                bool ok = double.IsNaN(expected[i]) ? float.IsNaN(y[i]) : y[i] == expected[i];
                if (!ok) Assert.Fail($"seed {seed}, {p}: output {i} is {y[i]}, expected {expected[i]}");
            }
            if (nan) Assert.Contains(y, float.IsNaN);
        }
    }

    [Theory, MemberData(nameof(Kinds))]
    public void IlgpuKernel_MatchesReference(PoolKind kind)
    {
        var rng = KernelLab.NewRng(out int seed);
        var acc = _ilgpu.Accelerator;
        var kernels = new Pool2dGpu(acc);
        for (int i = 0; i < Cases; i++)
        {
            var p = RandomParams(rng, kind, maxSide: 24, maxOutputs: EmulatorMaxOutputs);
            Check(p, rng, seed, x =>
            {
                using var bx = acc.Allocate1D(x);
                var poison = new float[p.OutputElements];
                KernelLab.Poison(poison);
                using var by = acc.Allocate1D(poison);
                kernels.Forward(p, bx.View, by.View);
                acc.Synchronize();
                return by.GetAsArray1D();
            });
        }
    }

    [Theory, MemberData(nameof(Kinds))]
    public void CpuDevice_MatchesReference(PoolKind kind)
    {
        using var device = new CpuDevice();
        DeviceSweep(device, kind, maxSide: 48, maxOutputs: 30_000);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void IlgpuDevice_MatchesReference(PoolKind kind) => DeviceSweep(_ilgpu, kind, maxSide: 24, maxOutputs: EmulatorMaxOutputs);

    /// <summary>
    /// Validate's pad &lt;= half the dilated kernel still lets a dilated window straddle the input
    /// and hit only padding; PyTorch then gives -inf, and so must every implementation.
    /// </summary>
    [Fact]
    public void MaxPool_WindowOfPaddingOnly_GivesNegativeInfinity()
    {
        var p = Pool2dParams.Create(PoolKind.Max, 1, 2, 1, 1, kernel: 2, stride: 1, padding: 2, dilation: 3);
        var rng = KernelLab.NewRng(out int seed);
        var x = KernelLab.RandomFloats(rng, p.InputElements);
        var expected = new double[p.OutputElements];
        Pool2dReference.Forward(p, x, expected);
        Assert.All(expected, v => Assert.Equal(double.NegativeInfinity, v));

        var y = new float[p.OutputElements];
        Pool2dCpu.Forward(p, x, y);
        Assert.All(y, v => Assert.Equal(float.NegativeInfinity, v));

        using var tx = _ilgpu.FromHost(x, new Shape(p.N, p.C, p.H, p.W));
        var g = KernelLab.RunOnDevice(_ilgpu, p.OutputElements, () => tx, ty => _ilgpu.Pool2d(p, tx, ty));
        Assert.All(g, v => Assert.Equal(float.NegativeInfinity, v));
    }

    [Fact]
    public void BadSizes_Throw()
    {
        var ok = Pool2dParams.Create(PoolKind.Max, 1, 2, 5, 5, kernel: 2);
        Pool2dParams[] bad =
        [
            ok with { StrideW = 0 },
            ok with { DilH = 0 },
            ok with { N = 0 },
            ok with { PadH = 2 },                                  // more than half the kernel
            ok with { PadW = -1 },
            ok with { Kind = PoolKind.Avg, DilW = 2 },             // average pooling has no dilation
            ok with { H = 1, KH = 3, PadH = 0 },                   // window larger than the input
        ];
        foreach (var p in bad)
            Assert.Throws<ArgumentException>(() => Pool2dCpu.Forward(p, new float[50], new float[50]));

        var x = new float[ok.InputElements];
        Assert.Throws<ArgumentException>(() => Pool2dCpu.Forward(ok, x.AsSpan(1), new float[ok.OutputElements]));
        Assert.Throws<ArgumentException>(() => Pool2dCpu.Forward(ok, x, new float[ok.OutputElements + 1]));
        Assert.Throws<ArgumentException>(() => Pool2dReference.Forward(ok, x, new double[ok.OutputElements - 1]));

        var acc = _ilgpu.Accelerator;
        using var bx = acc.Allocate1D<float>(ok.InputElements);
        using var by = acc.Allocate1D<float>(ok.OutputElements + 3);
        var e = Assert.Throws<ArgumentException>(() => _ilgpu.PoolKernels.Forward(ok, bx.View, by.View));
        Assert.Contains("pool2d", e.Message);
        Assert.Throws<ArgumentException>(() => _ilgpu.PoolKernels.Forward(ok with { StrideH = 0 }, bx.View, bx.View));

        using var cpu = new CpuDevice();
        using var tx = cpu.Allocate(new Shape(1, 2, 5, 5));
        using var ty = cpu.Allocate(new Shape(1, 2, 3, 3));
        Assert.Throws<ArgumentException>(() => cpu.Pool2d(ok, tx, ty));
    }

    private static void DeviceSweep(Device device, PoolKind kind, int maxSide, int maxOutputs)
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < Cases; i++)
        {
            var p = RandomParams(rng, kind, maxSide, maxOutputs);
            Check(p, rng, seed, x =>
            {
                using var tx = device.FromHost(x, new Shape(p.N, p.C, p.H, p.W));
                return KernelLab.RunOnDevice(device, p.OutputElements, () => tx, y => device.Pool2d(p, tx, y.Reshape(new Shape(p.N, p.C, p.OutH, p.OutW))));
            });
        }
    }

    private static void Check(in Pool2dParams p, Random rng, int seed, Func<float[], float[]> run)
    {
        var x = KernelLab.RandomFloats(rng, p.InputElements);
        var expected = new double[p.OutputElements];
        Pool2dReference.Forward(p, x, expected);
        var actual = run(x);
        string context = $"seed {seed}, {p}";
        if (p.Kind == PoolKind.Max)
        {
            // Max only selects an input, so it must be exact; -inf (a dilated window of padding only) must match too.
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < actual.Length; i++)
                if (actual[i] != expected[i]) Assert.Fail($"{context}: output {i} is {actual[i]}, expected {expected[i]}");
        }
        else
        {
            KernelLab.AssertClose(actual, expected, 1e-5, context);
        }
    }

    /// <summary>
    /// A random valid shape: odd and even sizes, kernel 1..5, stride 1..3 (1 half the time, the
    /// vectorized path), padding up to half the (dilated) kernel, dilation 1..3 for max,
    /// count_include_pad both ways for avg, batch 1 or more.
    /// </summary>
    private static Pool2dParams RandomParams(Random rng, PoolKind kind, int maxSide, int maxOutputs)
    {
        while (true)
        {
            var p = new Pool2dParams
            {
                Kind = kind,
                N = rng.Next(2) == 0 ? 1 : rng.Next(2, 4),
                C = rng.Next(1, 6),
                KH = rng.Next(1, 6),
                KW = rng.Next(1, 6),
                StrideH = rng.Next(2) == 0 ? 1 : rng.Next(2, 4),
                StrideW = rng.Next(2) == 0 ? 1 : rng.Next(2, 4),
                DilH = kind == PoolKind.Max ? rng.Next(1, 4) : 1,
                DilW = kind == PoolKind.Max ? rng.Next(1, 4) : 1,
                CountIncludePad = rng.Next(2),
            };
            p.PadH = rng.Next(0, (p.DilH * (p.KH - 1) + 1) / 2 + 1);
            p.PadW = rng.Next(0, (p.DilW * (p.KW - 1) + 1) / 2 + 1);
            int minH = Math.Max(1, p.DilH * (p.KH - 1) + 1 - 2 * p.PadH);
            int minW = Math.Max(1, p.DilW * (p.KW - 1) + 1 - 2 * p.PadW);
            p.H = minH + rng.Next(0, Math.Max(1, maxSide - minH));
            p.W = minW + rng.Next(0, Math.Max(1, maxSide - minW));
            p.Validate();
            if (p.OutputElements <= maxOutputs) return p;
        }
    }
}
