using GpuAnomaly.Engine;
using Xunit;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// The generic ONNX ops on the cpu device (float32, planned tensors, poisoned outputs) against their float64 form on
/// random shapes: odd sizes, batch 1 and more, broadcasting in both directions. Semantics are checked independently by
/// the PyTorch fixtures and the onnx-test node folders.
/// </summary>
public sealed class GenericOpTests
{
    private static int[] RandomDims(Random rng, int rank, int max = 7) => Enumerable.Range(0, rank).Select(_ => rng.Next(1, max + 1)).ToArray();

    /// <summary>Runs <paramref name="op"/> on cpu into a NaN-poisoned output and compares with its float64 reference.</summary>
    private static void Check(HostKernelOp op, Shape[] shapes, Random rng, int seed, double tol = 1e-5, float scale = 1f, bool positive = false,
        string device = "cpu", Func<float, float>? map = null)
    {
        var host = shapes.Select(s =>
        {
            var v = KernelLab.RandomFloats(rng, s.Elements, scale);
            if (map is not null) return v.Select(map).ToArray();
            return positive ? v.Select(Math.Abs).ToArray() : v;
        }).ToArray();
        var expected = op.Reference(host.Select(h => h.Select(v => (double)v).ToArray()).ToArray(), shapes, out var shape);
        using var dev = Device.Open(device);
        var inputs = host.Select((h, i) => dev.FromHost(h, shapes[i])).ToArray();
        using var y = dev.FromHost(Enumerable.Repeat(float.NaN, (int)shape.Elements).ToArray(), shape);
        op.Run(dev, inputs, y);
        dev.Synchronize();
        var actual = y.ToArray();
        foreach (var t in inputs) t.Dispose();
        if (shape.Elements == 0) return;
        ReduceMagnitude.AssertClose(op, host[0], shapes[0], actual, expected, tol, $"{op} on {string.Join(", ", shapes.Select(s => s.ToString()))} (seed {seed})");
    }

    /// <summary>
    /// NdMath.Mod (one fused rounding below 2^24 quotients, fmod past them) against numpy's definition written out:
    /// the exact fmod, then + b where its sign is not the divisor's. Bit for bit, on magnitudes 2^-30 to 2^30 of either
    /// sign (quotients from tiny to far past 2^24), a / b rounding onto integers, and the special values.
    /// </summary>
    [Fact]
    public void Mod_IsFmodMovedOntoTheDivisorsSide_BitForBit()
    {
        var rng = KernelLab.NewRng(out int seed);
        static float Numpy(float a, float b)
        {
            float r = a % b;
            if (r == 0) return MathF.CopySign(0, b);
            return (r < 0) != (b < 0) ? r + b : r;
        }
        static double NumpyD(double a, double b)
        {
            double r = a % b;
            if (r == 0) return Math.CopySign(0, b);
            return (r < 0) != (b < 0) ? r + b : r;
        }
        var pairs = new List<(float A, float B)>();
        for (int i = 0; i < 200_000; i++)
        {
            float b = KernelLab.RandomFloats(rng, 1)[0] * MathF.Pow(2, rng.Next(-30, 31));
            float a = i % 4 == 0
                ? b * rng.Next(-100_000, 100_000) * (1 + (rng.Next(3) - 1) * MathF.Pow(2, -23)) // a / b within an ulp of an integer
                : KernelLab.RandomFloats(rng, 1)[0] * MathF.Pow(2, rng.Next(-30, 31));
            pairs.Add((a, b));
        }
        float[] special = [0f, -0f, 1f, -1f, 1e-45f, -1e-45f, 3e38f, -3e38f, float.PositiveInfinity, float.NegativeInfinity, float.NaN];
        foreach (float a in special) foreach (float b in special) pairs.Add((a, b));
        foreach (var (a, b) in pairs)
        {
            float expected = Numpy(a, b), actual = NdMath.Mod(a, b);
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual) || (float.IsNaN(expected) && float.IsNaN(actual)),
                $"mod({a:R}, {b:R}) = {actual:R}, numpy {expected:R} (seed {seed})");
            double ed = NumpyD(a * 1.1, b), ad = NdMath.Mod(a * 1.1, (double)b);
            Assert.True(BitConverter.DoubleToInt64Bits(ed) == BitConverter.DoubleToInt64Bits(ad) || (double.IsNaN(ed) && double.IsNaN(ad)),
                $"mod({a * 1.1:R}, {b:R}) in float64 = {ad:R}, numpy {ed:R} (seed {seed})");
        }
    }

    [Fact]
    public void BroadcastBinary()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var kind in Enum.GetValues<BinaryKind>())
            for (int trial = 0; trial < 6; trial++)
            {
                var a = RandomDims(rng, rng.Next(1, 5));
                // b: a suffix of a's dims with some of them set to 1 (or a prefix of ones that a lacks).
                var b = a.Skip(rng.Next(a.Length)).Select(d => rng.Next(3) == 0 ? 1 : d).ToArray();
                var (x, z) = trial % 2 == 0 ? (a, b) : (b, a);
                bool positive = kind is BinaryKind.Pow or BinaryKind.Mod or BinaryKind.Fmod or BinaryKind.Div;
                Check(new BroadcastBinaryOp(kind), [new Shape(x), new Shape(z)], rng, seed, positive: positive);
            }
    }

    [Fact]
    public void Unary()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var kind in Enum.GetValues<UnaryKind>())
        {
            bool positive = kind is UnaryKind.Sqrt or UnaryKind.Log or UnaryKind.Acosh or UnaryKind.Reciprocal;
            float scale = kind == UnaryKind.Acosh ? 3 : kind is UnaryKind.Atanh or UnaryKind.Asin or UnaryKind.Acos ? 0.9f : 2;
            var dims = RandomDims(rng, rng.Next(1, 4), 9);
            if (kind == UnaryKind.Acosh)
            {
                // acosh needs x >= 1: checked on 1 + |x|.
                var op = new UnaryMathOp(kind);
                var host = KernelLab.RandomFloats(rng, 20).Select(v => 1 + Math.Abs(v)).ToArray();
                var refy = op.Reference([host.Select(v => (double)v).ToArray()], [new Shape(20)], out _);
                using var device = new CpuDevice();
                using var x = device.FromHost(host, new Shape(20));
                using var y = device.Allocate(new Shape(20));
                KernelLab.Poison(y.Span<float>());
                op.Run(device, [x], y);
                KernelLab.AssertClose(y.ToArray(), refy, 1e-5, "acosh");
                continue;
            }
            Check(new UnaryMathOp(kind, kind == UnaryKind.Clip ? -0.5f : 0.3f, kind == UnaryKind.Clip ? 0.7f : 0.6f),
                [new Shape(dims)], rng, seed, tol: kind is UnaryKind.Erf or UnaryKind.Gelu or UnaryKind.Mish ? 1e-5 : 1e-6, scale: scale, positive: positive);
        }
    }

    [Fact]
    public void LayoutOps()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 8; trial++)
        {
            int rank = rng.Next(1, 5);
            var d = RandomDims(rng, rank);
            var perm = Enumerable.Range(0, rank).OrderBy(_ => rng.Next()).ToArray();
            Check(new TransposeOp(perm), [new Shape(d)], rng, seed);
            int axis = rng.Next(rank);
            var other = (int[])d.Clone();
            other[axis] = rng.Next(1, 6);
            Check(new ConcatOp(axis), [new Shape(d), new Shape(other), new Shape(d)], rng, seed);
            var starts = d.Select(n => (long)rng.Next(-n - 2, n + 2)).ToArray();
            var ends = d.Select(n => (long)rng.Next(-n - 2, n + 2)).ToArray();
            var steps = d.Select(_ => (long)(rng.Next(2) == 0 ? rng.Next(1, 3) : -rng.Next(1, 3))).ToArray();
            var (s, st, len) = GpuAnomaly.Engine.Onnx.OnnxImporter.SliceAxes(new Shape(d), starts, ends, Enumerable.Range(0, rank).Select(i => (long)i).ToArray(), steps);
            Check(new SliceOp(s, st, len), [new Shape(d)], rng, seed);
            var begin = d.Select(_ => (long)rng.Next(-1, 3)).ToArray();
            var end = d.Select(_ => (long)rng.Next(0, 3)).ToArray();
            Check(new PadOp(begin, end, 0.25f), [new Shape(d)], rng, seed);
            var idx = Enumerable.Range(0, rng.Next(1, 5)).Select(_ => (long)rng.Next(d[axis])).ToArray();
            Check(new GatherOp(axis, idx, [idx.Length]), [new Shape(d)], rng, seed);
            var small = d.Select(n => rng.Next(2) == 0 ? 1 : n).ToArray();
            Check(new ExpandOp(new Shape(d)), [new Shape(small)], rng, seed);
        }
    }

    [Fact]
    public void ReductionsSoftmaxMatMul()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 6; trial++)
        {
            int rank = rng.Next(1, 5);
            var d = RandomDims(rng, rank);
            var axes = Enumerable.Range(0, rank).Where(_ => rng.Next(2) == 0).DefaultIfEmpty(rank - 1).ToArray();
            foreach (var kind in Enum.GetValues<ReduceKind>())
                // Products of thousands of values in [-1, 1] underflow float32: ReduceProd gets magnitudes in [1, 1.01], either sign.
                Check(new ReduceOp(kind, axes, rng.Next(2) == 0), [new Shape(d)], rng, seed, tol: 1e-5, positive: kind is ReduceKind.LogSum,
                    map: kind == ReduceKind.Prod ? v => MathF.Sign(v) * (1 + MathF.Abs(v) / 100) : null);
            // exp(x) overflows float32 past 88.7: LogSumExp of inputs in (90, 120] holds only when shifted by the max.
            Check(new ReduceOp(ReduceKind.LogSumExp, [rank - 1], false), [new Shape(d)], rng, seed, map: v => 90 + 30 * MathF.Abs(v));
            Check(new SoftmaxAxisOp(rng.Next(rank), rng.Next(2) == 0), [new Shape(d)], rng, seed, tol: 1e-5, scale: 4);
            int m = rng.Next(1, 9), k = rng.Next(1, 17), n = rng.Next(1, 9), batch = rng.Next(1, 4);
            Check(new MatMulOp(), [new Shape(batch, m, k), new Shape(k, n)], rng, seed);
            Check(new MatMulOp(), [new Shape(1, m, k), new Shape(batch, 1, k, n)], rng, seed);
        }
    }

    /// <summary>The ILGPU kernels of the elementwise ops, on the CPU emulator (tiny shapes: a microsecond per thread).</summary>
    [Fact]
    public void Elementwise_OnIlgpuCpu()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var kind in new[] { BinaryKind.Add, BinaryKind.Sub, BinaryKind.Mul, BinaryKind.Div, BinaryKind.Pow, BinaryKind.Max, BinaryKind.Min })
            for (int trial = 0; trial < 2; trial++)
            {
                var a = RandomDims(rng, rng.Next(1, 5), 4);
                var b = a.Skip(rng.Next(a.Length)).Select(d => rng.Next(2) == 0 ? 1 : d).ToArray();
                var (x, z) = trial == 0 ? (a, b) : (b, a);
                Check(new BroadcastBinaryOp(kind), [new Shape(x), new Shape(z)], rng, seed, positive: kind is BinaryKind.Pow or BinaryKind.Div, device: "ilgpu-cpu");
            }
        // The functions without parameters; every function (Clip's bounds, ...) is GenericOpIlgpuTests.Unary_EveryFunction.
        foreach (var kind in Enum.GetValues<UnaryKind>().Where(k => k <= UnaryKind.Ceil))
            Check(new UnaryMathOp(kind), [new Shape(RandomDims(rng, 2, 5))], rng, seed, tol: 1e-6,
                positive: kind is UnaryKind.Sqrt or UnaryKind.Log or UnaryKind.Reciprocal, device: "ilgpu-cpu");
        Check(new ReshapeCopyOp(new Shape(6, 2)), [new Shape(3, 4)], rng, seed, device: "ilgpu-cpu");
        // An op the kernels cannot take says so (a transpose over 7 axes of size > 1; the index map holds 6).
        Assert.Throws<OpNotOnDeviceException>(() => Check(new TransposeOp([1, 0, 2, 3, 4, 5, 6]), [new Shape(2, 2, 2, 2, 2, 2, 2)], rng, seed, device: "ilgpu-cpu"));
    }

    [Fact]
    public void PoolNd_AnyWindowPadsAndCeilMode()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 12; trial++)
        {
            int sp = rng.Next(1, 4);
            var k = RandomDims(rng, sp, 3);
            var s = RandomDims(rng, sp, 3);
            var d = RandomDims(rng, sp, 2);
            var pb = k.Select(v => rng.Next(0, v)).ToArray();
            var pe = k.Select(v => rng.Next(0, v)).ToArray();
            var x = new[] { rng.Next(1, 3), rng.Next(1, 4) }.Concat(k.Select((v, i) => (v - 1) * d[i] + 1 + rng.Next(0, 5))).ToArray();
            Check(new PoolNdOp(rng.Next(2) == 0, k, s, d, pb, pe, rng.Next(2) == 0, rng.Next(2) == 0), [new Shape(x)], rng, seed);
        }
    }

    [Fact]
    public void InPlaceReshape_SkipsTheCopy_AndAPlannedGraphReusesBuffers()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", new Shape(2, 6));
        var e = g.Apply(new UnaryMathOp(UnaryKind.Exp), x);
        var r = g.Apply(new ReshapeCopyOp(new Shape(3, 4)), e);
        var s = g.Apply(new UnaryMathOp(UnaryKind.Sigmoid), r);
        g.Output("y", g.Apply(new BroadcastBinaryOp(BinaryKind.Mul), s, g.Constant("c", [1, 2, 3, 4], new Shape(4))));
        var graph = g.Build();
        Assert.True(graph.Plan.PeakActivationBytes < graph.Plan.NaiveActivationBytes);
        var rng = KernelLab.NewRng(out int seed);
        var host = KernelLab.RandomFloats(rng, 12);
        using var device = new CpuDevice();
        using var exec = new Executor(graph, device);
        var y = exec.RunToHost(("x", host))["y"];
        var expected = host.Select((v, i) => 1 / (1 + Math.Exp(-Math.Exp(v))) * (i % 4 + 1)).ToArray();
        KernelLab.AssertClose(y, expected, 1e-6, $"exp -> reshape -> sigmoid -> mul (seed {seed})");
    }
}
