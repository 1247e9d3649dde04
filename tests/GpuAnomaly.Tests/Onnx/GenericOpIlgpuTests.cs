using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Layout;
using Xunit;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// The ILGPU kernels of the generic ONNX ops on the CPU emulator (ilgpu-cpu, warp size 4) against each op's float64
/// Reference: random shapes (odd sizes, ranks 1 to 5, batch 1 and more), NaN-poisoned outputs, relative L2. The emulator
/// runs a thread in about a microsecond, so the shapes stay small; the grouped reduction and the matmul tiles get
/// shapes just past their thresholds and tile edges.
/// </summary>
public sealed class GenericOpIlgpuTests : IDisposable
{
    private readonly IlgpuDevice _dev = IlgpuDevice.OpenCpuEmulator();

    public void Dispose() => _dev.Dispose();

    private static int[] RandomDims(Random rng, int rank, int max = 5) => Enumerable.Range(0, rank).Select(_ => rng.Next(1, max + 1)).ToArray();

    /// <summary>Runs <paramref name="op"/> on ilgpu-cpu into a NaN-poisoned output and compares with its float64 reference.</summary>
    private void Check(HostKernelOp op, Shape[] shapes, Random rng, int seed, double tol = 1e-5, float scale = 1f, Func<float, float>? map = null)
    {
        var host = shapes.Select(s => KernelLab.RandomFloats(rng, s.Elements, scale).Select(v => map is null ? v : map(v)).ToArray()).ToArray();
        var expected = op.Reference(host.Select(h => h.Select(v => (double)v).ToArray()).ToArray(), shapes, out var shape);
        var inputs = host.Select((h, i) => _dev.FromHost(h, shapes[i])).ToArray();
        using var y = _dev.FromHost(Enumerable.Repeat(float.NaN, (int)shape.Elements).ToArray(), shape);
        op.Run(_dev, inputs, y);
        _dev.Synchronize();
        var actual = y.ToArray();
        foreach (var t in inputs) t.Dispose();
        if (shape.Elements == 0) return;
        ReduceMagnitude.AssertClose(op, host[0], shapes[0], actual, expected, tol, $"{op} on {string.Join(", ", shapes.Select(s => s.ToString()))} (seed {seed})");
    }

    [Fact]
    public void LayoutOps()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 10; trial++)
        {
            int rank = trial % 5 + 1;
            var d = RandomDims(rng, rank);
            var perm = Enumerable.Range(0, rank).OrderBy(_ => rng.Next()).ToArray();
            Check(new TransposeOp(perm), [new Shape(d)], rng, seed);
            int axis = rng.Next(rank);
            var other = (int[])d.Clone();
            other[axis] = rng.Next(1, 6);
            Check(new ConcatOp(axis), [new Shape(d), new Shape(other), new Shape(d)], rng, seed);
            // Slice with clamped, negative and over-range bounds, steps of both signs.
            var starts = d.Select(n => (long)rng.Next(-n - 2, n + 2)).ToArray();
            var ends = d.Select(n => (long)rng.Next(-n - 2, n + 2)).ToArray();
            var steps = d.Select(_ => (long)(rng.Next(2) == 0 ? rng.Next(1, 3) : -rng.Next(1, 3))).ToArray();
            var (s, st, len) = GpuAnomaly.Engine.Onnx.OnnxImporter.SliceAxes(new Shape(d), starts, ends, Enumerable.Range(0, rank).Select(i => (long)i).ToArray(), steps);
            Check(new SliceOp(s, st, len), [new Shape(d)], rng, seed);
            // Split: consecutive slices along one axis.
            for (long at = 0; at < d[axis]; at += 2)
            {
                var (s2, st2, len2) = GpuAnomaly.Engine.Onnx.OnnxImporter.SliceAxes(new Shape(d), [at], [at + 2], [axis], [1]);
                Check(new SliceOp(s2, st2, len2), [new Shape(d)], rng, seed);
            }
            var begin = d.Select(_ => (long)rng.Next(-1, 3)).ToArray();
            var end = d.Select(n => (long)rng.Next(n > 1 ? -1 : 0, 3)).ToArray();
            Check(new PadOp(begin, end, 0.25f), [new Shape(d)], rng, seed);
            // Gather with scalar, 1-D and 2-D index tensors.
            var idxDims = (trial % 3) switch { 0 => Array.Empty<int>(), 1 => [rng.Next(1, 5)], _ => new[] { 2, rng.Next(1, 4) } };
            var idx = Enumerable.Range(0, idxDims.Aggregate(1, (a, b) => a * b)).Select(_ => (long)rng.Next(d[axis])).ToArray();
            Check(new GatherOp(axis, idx, idxDims), [new Shape(d)], rng, seed);
            // Expand: repeated axes and added leading ones.
            var small = d.Skip(rng.Next(rank)).Select(n => rng.Next(2) == 0 ? 1 : n).ToArray();
            Check(new ExpandOp(new Shape(d)), [new Shape(small)], rng, seed);
        }
        // Rank 6 fills the map; rank 7 with a unit axis folds it away.
        Check(new TransposeOp([5, 0, 3, 1, 4, 2]), [new Shape(2, 3, 1, 2, 3, 2)], rng, seed);
        Check(new TransposeOp([6, 0, 3, 1, 4, 2, 5]), [new Shape(2, 3, 1, 2, 3, 2, 2)], rng, seed);
    }

    [Fact]
    public void Layout_TooManyAxes_IsNotOnDevice()
    {
        var rng = KernelLab.NewRng(out int seed);
        var e = Assert.Throws<OpNotOnDeviceException>(() =>
            Check(new TransposeOp([1, 0, 2, 3, 4, 5, 6]), [new Shape(2, 2, 2, 2, 2, 2, 2)], rng, seed));
        Assert.Equal("ilgpu-cpu", e.Device);
    }

    /// <summary>The map's edge / reflect / wrap modes (for Pad's other modes) against numpy's definitions written out here.</summary>
    [Fact]
    public void IndexMap_PadModes()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var mode in new[] { OutsideMode.Edge, OutsideMode.Reflect, OutsideMode.Wrap, OutsideMode.Constant })
            for (int trial = 0; trial < 3; trial++)
            {
                int rank = rng.Next(1, 4);
                var xd = RandomDims(rng, rank, 4);
                var begin = xd.Select(n => (long)rng.Next(0, mode == OutsideMode.Reflect ? n : 4)).ToArray();
                var yd = xd.Select((n, i) => n + (int)begin[i] + rng.Next(0, mode == OutsideMode.Reflect ? n : 4)).ToArray();
                var x = KernelLab.RandomFloats(rng, xd.Aggregate(1, (a, b) => a * b));
                var sx = IndexMaps.Strides(xd);
                var expected = new double[yd.Aggregate(1, (a, b) => a * b)];
                var c = new int[rank];
                for (int o = 0; o < expected.Length; o++)
                {
                    for (int i = rank - 1, r = o; i >= 0; r /= yd[i], i--) c[i] = r % yd[i];
                    long off = 0;
                    bool outside = false;
                    for (int i = 0; i < rank; i++)
                    {
                        int p = c[i] - (int)begin[i], n = xd[i];
                        if (mode == OutsideMode.Edge) p = Math.Clamp(p, 0, n - 1);
                        else if (mode == OutsideMode.Wrap) p = ((p % n) + n) % n;
                        else if (mode == OutsideMode.Reflect) while (n > 1 && (p < 0 || p >= n)) p = p < 0 ? -p : 2 * (n - 1) - p;
                        if (n == 1 && mode == OutsideMode.Reflect) p = 0;
                        outside |= p < 0 || p >= n;
                        off += p * sx[i];
                    }
                    expected[o] = outside ? -7 : x[off];
                }
                var map = IndexMaps.Create(PadOp.PadAxes(xd, yd, begin), mode: mode, value: -7)!.Value;
                using var xt = _dev.FromHost(x, new Shape(xd));
                using var yt = _dev.FromHost(Enumerable.Repeat(float.NaN, expected.Length).ToArray(), new Shape(yd));
                _dev.IndexMapKernels.Copy(map, xt.View<float>(), default, yt.View<float>());
                KernelLab.AssertClose(yt.ToArray(), expected, 0, $"pad {mode} [{string.Join(",", xd)}] -> [{string.Join(",", yd)}] (seed {seed})");
            }
    }

    [Fact]
    public void Reductions()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 5; trial++)
        {
            int rank = trial + 1;
            var d = RandomDims(rng, rank);
            var axes = Enumerable.Range(0, rank).Where(_ => rng.Next(2) == 0).DefaultIfEmpty(rank - 1).ToArray();
            foreach (var kind in Enum.GetValues<ReduceKind>())
                Check(new ReduceOp(kind, axes, rng.Next(2) == 0), [new Shape(d)], rng, seed,
                    map: kind switch
                    {
                        ReduceKind.LogSum => MathF.Abs,
                        // Magnitudes in [0.5, 1.5]: a product of ~100 values of [-1, 1] underflows float32.
                        ReduceKind.Prod => v => MathF.Sign(v) * (0.5f + MathF.Abs(v)),
                        _ => null,
                    });
        }
        // exp(x) overflows float32 past 88.7: LogSumExp of inputs in (90, 120] holds only when shifted by the max.
        Check(new ReduceOp(ReduceKind.LogSumExp, [1], false), [new Shape(3, 7)], rng, seed, map: v => 90 + 30 * MathF.Abs(v));
        // GlobalAveragePool / GlobalMaxPool: every axis after the channels, kept.
        Check(new ReduceOp(ReduceKind.Mean, [2, 3], true), [new Shape(2, 3, 5, 7)], rng, seed);
        Check(new ReduceOp(ReduceKind.Max, [2, 3, 4], true), [new Shape(1, 3, 3, 2, 5)], rng, seed);
    }

    /// <summary>
    /// Reduced extents past ReduceGpu.GroupedMinCount take the shared-memory tree. Its summation order differs from the
    /// reference's, so sums are checked on positive inputs (no cancellation to magnify float32 rounding) and products
    /// on values near 1 (no underflow).
    /// </summary>
    [Fact]
    public void Reductions_LongExtent_Grouped()
    {
        var rng = KernelLab.NewRng(out int seed);
        var cases = new (int[] Dims, int[] Axes)[] { ([2, 601], [1]), ([3, 7, 41], [1, 2]), ([23, 2, 13], [0, 2]), ([1, 4096], [1]) };
        foreach (var (dims, axes) in cases)
            foreach (var kind in Enum.GetValues<ReduceKind>())
                Check(new ReduceOp(kind, axes, false), [new Shape(dims)], rng, seed,
                    map: kind == ReduceKind.Prod ? v => 1 + v / 1000 : kind is ReduceKind.Max or ReduceKind.Min ? null : MathF.Abs);
        // The grouped LogSumExp's max goes through the tree first: inputs past exp's float32 range.
        Check(new ReduceOp(ReduceKind.LogSumExp, [1], false), [new Shape(2, 601)], rng, seed, map: v => 90 + 30 * MathF.Abs(v));
    }

    [Fact]
    public void Softmax()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 10; trial++)
        {
            int rank = trial % 5 + 1;
            var d = RandomDims(rng, rank, 6);
            // Inputs up to +-8: exp without the max subtraction would still fit, but the kernel's rounding is checked.
            Check(new SoftmaxAxisOp(rng.Next(rank), trial % 2 == 0), [new Shape(d)], rng, seed, scale: 8);
        }
        // Axes of 256 or more take the grouped kernel: last axis, and a middle one (strided rows).
        Check(new SoftmaxAxisOp(1, false), [new Shape(2, 300)], rng, seed, scale: 8);
        Check(new SoftmaxAxisOp(1, true), [new Shape(1, 1000)], rng, seed, scale: 8);
        Check(new SoftmaxAxisOp(1, false), [new Shape(2, 257, 3)], rng, seed, scale: 8);
    }

    [Fact]
    public void MatMul_BatchedAndBroadcast()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 4; trial++)
        {
            // Sizes around the 16-wide tile: 1, odd, just past one or two tiles.
            int m = rng.Next(1, 36), k = rng.Next(1, 40), n = rng.Next(1, 36), batch = rng.Next(1, 4);
            Check(new MatMulOp(), [new Shape(batch, m, k), new Shape(k, n)], rng, seed);
            Check(new MatMulOp(), [new Shape(1, m, k), new Shape(batch, 1, k, n)], rng, seed);
            Check(new MatMulOp(), [new Shape(2, batch, m, k), new Shape(2, 1, k, n)], rng, seed);
        }
        Check(new MatMulOp(), [new Shape(1, 1), new Shape(1, 1)], rng, seed);
        Check(new MatMulOp(), [new Shape(17, 33), new Shape(33, 16)], rng, seed);
    }

    [Fact]
    public void PoolNd()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 12; trial++)
        {
            int sp = trial % 3 + 1;
            var k = RandomDims(rng, sp, 3);
            var s = RandomDims(rng, sp, 3);
            var d = RandomDims(rng, sp, 2);
            var pb = k.Select(v => rng.Next(0, v)).ToArray();
            var pe = k.Select(v => rng.Next(0, v)).ToArray();
            var x = new[] { rng.Next(1, 3), rng.Next(1, 4) }.Concat(k.Select((v, i) => (v - 1) * d[i] + 1 + rng.Next(0, 5))).ToArray();
            Check(new PoolNdOp(trial % 2 == 0, k, s, d, pb, pe, rng.Next(2) == 0, rng.Next(2) == 0), [new Shape(x)], rng, seed);
        }
    }

    [Fact]
    public void Unary_EveryFunction()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var kind in Enum.GetValues<UnaryKind>())
        {
            float alpha = kind == UnaryKind.Clip ? -0.5f : kind == UnaryKind.Selu ? 1.67f : 0.3f;
            float beta = kind == UnaryKind.Clip ? 0.7f : kind == UnaryKind.Selu ? 1.05f : 0.6f;
            Func<float, float>? map = kind switch
            {
                UnaryKind.Sqrt or UnaryKind.Log or UnaryKind.Reciprocal => MathF.Abs,
                UnaryKind.Acosh => v => 1 + MathF.Abs(v), // acosh needs x >= 1
                UnaryKind.Atanh or UnaryKind.Asin or UnaryKind.Acos => v => 0.45f * v, // inside (-1, 1) (scale 2)
                // Ties: Round's half-to-even is checked on k + 0.5.
                UnaryKind.Round => v => MathF.Round(v * 4) / 2 + 0.5f,
                // Float16 rounding over its whole range (subnormals to 2^15); the ends exactly in Float16Rounding_Exact.
                UnaryKind.ToFloat16 => v => v * MathF.Pow(2, (int)(v * 1e4f) % 23 - 8),
                _ => null,
            };
            // The log forms of the inverse hyperbolic functions and float erf lose a few ulps: 1e-5 (still far below a wrong formula).
            double tol = kind is UnaryKind.Erf or UnaryKind.Gelu or UnaryKind.Mish or UnaryKind.Asinh or UnaryKind.Acosh or UnaryKind.Atanh ? 1e-5 : 1e-6;
            Check(new UnaryMathOp(kind, alpha, beta), [new Shape(RandomDims(rng, rng.Next(1, 4), 7))], rng, seed, tol: tol, scale: 2, map: map);
        }
    }

    /// <summary>The functions the kernels compute with their own range reduction or series, over a wider range.</summary>
    [Fact]
    public void Unary_WideRange()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var kind in new[] { UnaryKind.Sin, UnaryKind.Cos, UnaryKind.Atan, UnaryKind.Tanh, UnaryKind.Sinh, UnaryKind.Cosh, UnaryKind.Mish })
        {
            Check(new UnaryMathOp(kind), [new Shape(rng.Next(20, 60))], rng, seed, tol: 1e-6, scale: 9);
            // Near zero, where the series take over.
            Check(new UnaryMathOp(kind), [new Shape(rng.Next(20, 60))], rng, seed, tol: 1e-6, scale: 0.4f);
        }
    }

    [Fact]
    public void BinaryModFmodPRelu()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var kind in new[] { BinaryKind.Mod, BinaryKind.Fmod, BinaryKind.PRelu })
            for (int trial = 0; trial < 3; trial++)
            {
                var a = RandomDims(rng, rng.Next(1, 5), 4);
                var b = a.Skip(rng.Next(a.Length)).Select(d => rng.Next(2) == 0 ? 1 : d).ToArray();
                var (x, z) = trial == 0 ? (a, b) : (b, a);
                Check(new BroadcastBinaryOp(kind), [new Shape(x), new Shape(z)], rng, seed, scale: 3,
                    map: kind == BinaryKind.PRelu ? null : v => MathF.Sign(v) * (0.5f + MathF.Abs(v)));
            }
    }

    /// <summary>Cast to FLOAT16 bit for bit as .NET's Half: ties to even, subnormals, the overflow to infinity.</summary>
    [Fact]
    public void Float16Rounding_Exact()
    {
        var rng = KernelLab.NewRng(out int seed);
        var values = new List<float> { 65504, 65519, 65520, 65536, -65520, 1e-8f, MathF.Pow(2, -25), 3 * MathF.Pow(2, -25), MathF.Pow(2, -24),
            MathF.Pow(2, -14), 1 + MathF.Pow(2, -11), 1 + 3 * MathF.Pow(2, -11), 2049, 2051, float.NaN, float.PositiveInfinity, -0f };
        values.AddRange(KernelLab.RandomFloats(rng, 200).Select(v => v * MathF.Pow(2, rng.Next(-30, 18))));
        using var x = _dev.FromHost(values.ToArray(), new Shape(values.Count));
        using var y = _dev.FromHost(Enumerable.Repeat(float.NaN, values.Count).ToArray(), new Shape(values.Count));
        new UnaryMathOp(UnaryKind.ToFloat16).Run(_dev, [x], y);
        var got = y.ToArray();
        for (int i = 0; i < values.Count; i++)
            Assert.True(BitConverter.SingleToInt32Bits(got[i]) == BitConverter.SingleToInt32Bits((float)(Half)values[i]) || float.IsNaN(values[i]) && float.IsNaN(got[i]),
                $"float16 of {values[i]:R}: {got[i]:R}, expected {(float)(Half)values[i]:R} (seed {seed})");
    }
}
