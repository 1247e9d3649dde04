using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Elementwise;
using ILGPU;
using ILGPU.Runtime;
using Xunit;
using Device = GpuAnomaly.Engine.Device;

namespace GpuAnomaly.Tests.Elementwise;

/// <summary>
/// LeakyRelu, Relu and Add: the cpu kernels, the ILGPU kernels on ilgpu-cpu, and the engine's
/// Device ops on both devices, over fresh random lengths (not multiples of the SIMD width)
/// against the float64 references. Relu must be exact; the others within relative L2 1e-5.
/// </summary>
public class ElementwiseTests : IClassFixture<IlgpuCpuFixture>
{
    public enum Op { LeakyRelu, Relu, Add }

    private const int Cases = 50;
    private readonly IlgpuDevice _ilgpu;

    public ElementwiseTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    public static TheoryData<Op> Ops => new() { Op.LeakyRelu, Op.Relu, Op.Add };

    /// <summary>Mostly short and odd lengths; every fifth one above the multi-threaded threshold (2^18).</summary>
    private static int CpuLength(Random rng, int i) => i % 5 == 4 ? rng.Next(1 << 18, 1 << 20) : i % 5 == 0 ? rng.Next(1, 40) : rng.Next(40, 20_000);
    private static int EmulatorLength(Random rng, int i) => i % 5 == 0 ? rng.Next(1, 40) : rng.Next(40, 3000);

    [Theory, MemberData(nameof(Ops))]
    public void CpuKernel_MatchesReference(Op op) => Sweep(op, CpuLength, RunCpuKernel);

    [Theory, MemberData(nameof(Ops))]
    public void IlgpuKernel_MatchesReference(Op op)
    {
        var kernels = new ElementwiseGpu(_ilgpu.Accelerator);
        Sweep(op, EmulatorLength, (o, a, b, slope, inPlace) => RunIlgpuKernel(kernels, o, a, b, slope, inPlace));
    }

    [Theory, MemberData(nameof(Ops))]
    public void CpuDevice_MatchesReference(Op op)
    {
        using var device = new CpuDevice();
        Sweep(op, CpuLength, (o, a, b, slope, inPlace) => RunDevice(device, o, a, b, slope, inPlace));
    }

    [Theory, MemberData(nameof(Ops))]
    public void IlgpuDevice_MatchesReference(Op op) =>
        Sweep(op, EmulatorLength, (o, a, b, slope, inPlace) => RunDevice(_ilgpu, o, a, b, slope, inPlace));

    /// <summary>y aliasing x (or a, or b): small and multi-threaded lengths on cpu, small ones on ilgpu-cpu.</summary>
    [Theory, MemberData(nameof(Ops))]
    public void InPlace_MatchesReference(Op op)
    {
        var rng = KernelLab.NewRng(out int seed);
        using var cpu = new CpuDevice();
        var kernels = new ElementwiseGpu(_ilgpu.Accelerator);
        foreach (var alias in new[] { Alias.A, Alias.B })
        {
            if (alias == Alias.B && op != Op.Add) continue;
            foreach (int n in new[] { 1, 37, 1001, 300_007 })
            {
                Case(op, rng, seed, n, alias, RunCpuKernel);
                Case(op, rng, seed, n, alias, (o, a, b, s, ip) => RunDevice(cpu, o, a, b, s, ip));
                if (n > 5000) continue;
                Case(op, rng, seed, n, alias, (o, a, b, s, ip) => RunIlgpuKernel(kernels, o, a, b, s, ip));
                Case(op, rng, seed, n, alias, (o, a, b, s, ip) => RunDevice(_ilgpu, o, a, b, s, ip));
            }
        }
    }

    [Fact]
    public void BadSizes_Throw()
    {
        float[] x = new float[10], y = new float[11];
        var e = Assert.Throws<ArgumentException>(() => ElementwiseCpu.LeakyRelu(x, 0.1f, y));
        Assert.Contains("leaky_relu", e.Message);
        Assert.Throws<ArgumentException>(() => ElementwiseCpu.Relu(x, y));
        Assert.Throws<ArgumentException>(() => ElementwiseCpu.Add(x, y, x));
        Assert.Throws<ArgumentException>(() => ElementwiseCpu.Add(x, x, y));
        Assert.Throws<ArgumentException>(() => ElementwiseReference.Add(x, x, new double[9]));

        var acc = _ilgpu.Accelerator;
        using var bx = acc.Allocate1D<float>(10);
        using var by = acc.Allocate1D<float>(11);
        var gpu = _ilgpu.ElementwiseKernels;
        Assert.Throws<ArgumentException>(() => gpu.LeakyRelu(bx.View, 0.1f, by.View));
        Assert.Throws<ArgumentException>(() => gpu.Relu(bx.View, by.View));
        e = Assert.Throws<ArgumentException>(() => gpu.Add(bx.View, by.View, bx.View));
        Assert.Contains("add", e.Message);

        foreach (Device device in new Device[] { new CpuDevice(), _ilgpu })
        {
            using var tx = device.Allocate(new Shape(2, 5));
            using var ty = device.Allocate(new Shape(11));
            Assert.Throws<ArgumentException>(() => device.LeakyRelu(tx, 0.1f, ty));
            Assert.Throws<ArgumentException>(() => device.Relu(tx, ty));
            Assert.Throws<ArgumentException>(() => device.Add(tx, ty, tx));
        }
    }

    /// <summary>
    /// LeakyRelu and Add take 16-byte accesses when lengths are whole Float4s and views are
    /// 16-byte aligned, scalar ones otherwise: sub-views at float offsets 0..4 cover both paths.
    /// </summary>
    [Theory, InlineData(Op.LeakyRelu), InlineData(Op.Add)]
    public void IlgpuKernel_AlignedAndOffsetViews(Op op)
    {
        var rng = KernelLab.NewRng(out int seed);
        var kernels = new ElementwiseGpu(_ilgpu.Accelerator);
        var acc = _ilgpu.Accelerator;
        for (int offset = 0; offset <= 4; offset++)
        foreach (int n in new[] { 4 * rng.Next(1, 600), 4 * rng.Next(1, 600) + 1 + rng.Next(3) })
        {
            var a = KernelLab.RandomFloats(rng, n);
            var b = KernelLab.RandomFloats(rng, n);
            float slope = (float)rng.NextDouble();
            var expected = new double[n];
            if (op == Op.LeakyRelu) ElementwiseReference.LeakyRelu(a, slope, expected);
            else ElementwiseReference.Add(a, b, expected);
            using var ba = acc.Allocate1D<float>(n + offset);
            using var bb = acc.Allocate1D<float>(n + offset);
            using var by = acc.Allocate1D<float>(n + offset);
            var va = ba.View.SubView(offset, n);
            var vb = bb.View.SubView(offset, n);
            var vy = by.View.SubView(offset, n);
            va.CopyFromCPU(a);
            vb.CopyFromCPU(b);
            vy.CopyFromCPU(Poisoned(n));
            if (op == Op.LeakyRelu) kernels.LeakyRelu(va, slope, vy);
            else kernels.Add(va, vb, vy);
            acc.Synchronize();
            KernelLab.AssertClose(vy.GetAsArray1D(), expected, 1e-5, $"seed {seed}, {op}, n={n}, offset={offset}");
        }
    }

    /// <summary>Which input the output aliases.</summary>
    public enum Alias { None, A, B }

    private delegate float[] Run(Op op, float[] a, float[] b, float slope, Alias alias);

    private static void Sweep(Op op, Func<Random, int, int> length, Run run)
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < Cases; i++) Case(op, rng, seed, length(rng, i), Alias.None, run);
    }

    private static void Case(Op op, Random rng, int seed, int n, Alias alias, Run run)
    {
        var a = KernelLab.RandomFloats(rng, n);
        var b = KernelLab.RandomFloats(rng, n, scale: 3f);
        float slope = (float)(rng.NextDouble() * 0.5 + 0.001);
        var expected = new double[n];
        switch (op)
        {
            case Op.LeakyRelu: ElementwiseReference.LeakyRelu(a, slope, expected); break;
            case Op.Relu: ElementwiseReference.Relu(a, expected); break;
            default: ElementwiseReference.Add(a, b, expected); break;
        }
        var actual = run(op, a, b, slope, alias);
        string context = $"seed {seed}, {op}, n={n}, alias={alias}";
        if (op == Op.Relu)
        {
            for (int i = 0; i < n; i++)
                if (actual[i] != expected[i]) Assert.Fail($"{context}: output {i} is {actual[i]}, expected {expected[i]}");
        }
        else
        {
            KernelLab.AssertClose(actual, expected, 1e-5, context);
        }
    }

    private static float[] RunCpuKernel(Op op, float[] a, float[] b, float slope, Alias alias)
    {
        a = (float[])a.Clone();
        b = (float[])b.Clone();
        var y = alias switch { Alias.A => a, Alias.B => b, _ => Poisoned(a.Length) };
        switch (op)
        {
            case Op.LeakyRelu: ElementwiseCpu.LeakyRelu(a, slope, y); break;
            case Op.Relu: ElementwiseCpu.Relu(a, y); break;
            default: ElementwiseCpu.Add(a, b, y); break;
        }
        return y;
    }

    private float[] RunIlgpuKernel(ElementwiseGpu kernels, Op op, float[] a, float[] b, float slope, Alias alias)
    {
        var acc = _ilgpu.Accelerator;
        using var ba = acc.Allocate1D(a);
        using var bb = acc.Allocate1D(b);
        using var by = acc.Allocate1D(Poisoned(a.Length));
        var y = alias switch { Alias.A => ba.View, Alias.B => bb.View, _ => by.View };
        switch (op)
        {
            case Op.LeakyRelu: kernels.LeakyRelu(ba.View, slope, y); break;
            case Op.Relu: kernels.Relu(ba.View, y); break;
            default: kernels.Add(ba.View, bb.View, y); break;
        }
        acc.Synchronize();
        return (alias switch { Alias.A => ba, Alias.B => bb, _ => by }).GetAsArray1D();
    }

    private static float[] RunDevice(Device device, Op op, float[] a, float[] b, float slope, Alias alias)
    {
        var shape = new Shape(a.Length);
        using var ta = device.FromHost(a, shape);
        using var tb = device.FromHost(b, shape);
        using var ty = device.FromHost(Poisoned(a.Length), shape);
        var y = alias switch { Alias.A => ta, Alias.B => tb, _ => ty };
        switch (op)
        {
            case Op.LeakyRelu: device.LeakyRelu(ta, slope, y); break;
            case Op.Relu: device.Relu(ta, y); break;
            default: device.Add(ta, tb, y); break;
        }
        device.Synchronize();
        return y.ToArray();
    }

    private static float[] Poisoned(int n)
    {
        var y = new float[n];
        KernelLab.Poison(y);
        return y;
    }
}
