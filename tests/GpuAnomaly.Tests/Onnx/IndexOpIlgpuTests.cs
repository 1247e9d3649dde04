using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Layout;
using Xunit;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// The ILGPU kernels of the index-shaped ONNX ops (ArgMax / ArgMin, GatherElements, CumSum, Hardmax, TopK, Tile, Trilu, Shrink,
/// MaxPool indices, Where, Einsum) on the CPU emulator (ilgpu-cpu, warp size 4) against each op's float64 Reference:
/// random small shapes (odd sizes, batch 1 and more), NaN-poisoned outputs. Index outputs compare exactly, on inputs
/// drawn from a few values so that ties happen (and NaN in some), which is where the devices could disagree.
/// </summary>
public sealed class IndexOpIlgpuTests : IDisposable
{
    private readonly IlgpuDevice _dev = IlgpuDevice.OpenCpuEmulator();
    private static readonly float[] Levels = [-1.5f, -1f, -0.5f, 0.5f, 1f, 1.5f];

    public void Dispose() => _dev.Dispose();

    private static int[] RandomDims(Random rng, int rank, int max = 5) => Enumerable.Range(0, rank).Select(_ => rng.Next(1, max + 1)).ToArray();

    /// <summary>Values from <see cref="Levels"/> (many ties, no zeros), with a NaN at about one place in <paramref name="nanEvery"/> when given.</summary>
    private static float[] TiedFloats(Random rng, long n, int nanEvery = 0) =>
        Enumerable.Range(0, (int)n).Select(_ => nanEvery > 0 && rng.Next(nanEvery) == 0 ? float.NaN : Levels[rng.Next(Levels.Length)]).ToArray();

    /// <summary>Runs the op on ilgpu-cpu into a NaN-poisoned output; returns it with the float64 reference.</summary>
    private (float[] Actual, double[] Expected) Run(HostKernelOp op, Shape[] shapes, float[][] host)
    {
        var expected = op.Reference(host.Select(h => h.Select(v => (double)v).ToArray()).ToArray(), shapes, out var shape);
        var inputs = host.Select((h, i) => _dev.FromHost(h, shapes[i])).ToArray();
        try
        {
            using var y = _dev.FromHost(Enumerable.Repeat(float.NaN, (int)shape.Elements).ToArray(), shape);
            op.Run(_dev, inputs, y);
            _dev.Synchronize();
            return (y.ToArray(), expected);
        }
        finally
        {
            foreach (var t in inputs) t.Dispose();
        }
    }

    private static string Context(HostKernelOp op, Shape[] shapes, int seed) => $"{op} on {string.Join(", ", shapes.Select(s => s.ToString()))} (seed {seed})";

    /// <summary>Exact equality, element by element (the reference holds no NaN where these are used, so a poisoned slot fails).</summary>
    private void Exact(HostKernelOp op, Shape[] shapes, float[][] host, int seed)
    {
        var (actual, expected) = Run(op, shapes, host);
        Assert.True(expected.All(v => !double.IsNaN(v)), $"{Context(op, shapes, seed)}: the reference has NaN");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(actual[i] == expected[i], $"{Context(op, shapes, seed)}: element {i} is {actual[i]}, expected {expected[i]}");
    }

    private void Close(HostKernelOp op, Shape[] shapes, float[][] host, int seed, double tol = 1e-5)
    {
        var (actual, expected) = Run(op, shapes, host);
        if (expected.Length > 0) KernelLab.AssertClose(actual, expected, tol, Context(op, shapes, seed));
    }

    [Fact]
    public void ArgMaxArgMin_TiesAndNaN_MatchTheReferenceExactly()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 12; trial++)
        {
            var shape = new Shape(RandomDims(rng, trial % 4 + 1, 6));
            int axis = rng.Next(shape.Rank);
            // A third of the trials hold NaN (the first NaN of a row wins, select_last or not).
            var x = TiedFloats(rng, shape.Elements, trial % 3 == 0 ? 5 : 0);
            foreach (bool max in new[] { true, false })
                foreach (bool last in new[] { false, true })
                    Exact(new ArgExtremeOp(max, axis, rng.Next(2) == 0, last), [shape], [x], seed);
        }
    }

    [Fact]
    public void TopK_ValuesAndIndices_TiesByTheLowerIndex()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 12; trial++)
        {
            var shape = new Shape(RandomDims(rng, trial % 4 + 1, 6));
            int axis = rng.Next(shape.Rank), k = rng.Next(0, shape[axis] + 1);
            bool largest = rng.Next(2) == 0;
            var x = TiedFloats(rng, shape.Elements);
            Exact(new TopKOp(axis, k, largest, false), [shape], [x], seed);
            Exact(new TopKOp(axis, k, largest, true), [shape], [x], seed);
            // NaN sorts above every number: indices only (the values would be NaN in the reference too).
            Exact(new TopKOp(axis, k, largest, true), [shape], [TiedFloats(rng, shape.Elements, 4)], seed);
        }
    }

    [Fact]
    public void GatherElements_RandomShapesAndNegativeIndices_AndRank7Merged()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 12; trial++)
        {
            var dims = RandomDims(rng, trial % 4 + 1);
            int axis = rng.Next(dims.Length);
            var idxDims = dims.Select((d, a) => a == axis ? rng.Next(1, 6) : rng.Next(1, d + 1)).ToArray();
            Shape xs = new(dims), ids = new(idxDims);
            var ind = Enumerable.Range(0, (int)ids.Elements).Select(_ => (float)rng.Next(-dims[axis], dims[axis])).ToArray();
            Exact(new GatherElementsOp(axis), [xs, ids], [KernelLab.RandomFloats(rng, xs.Elements), ind], seed);
        }
        // Rank 7 (NLL loss over N, C, d1..d5): the contiguous trailing axes merge into one, so it fits the 6 slots.
        Shape x7 = new(2, 3, 2, 3, 1, 2, 2), i7 = new(2, 1, 2, 3, 1, 2, 2);
        var ind7 = Enumerable.Range(0, (int)i7.Elements).Select(_ => (float)rng.Next(0, 3)).ToArray();
        Exact(new GatherElementsOp(1), [x7, i7], [KernelLab.RandomFloats(rng, x7.Elements), ind7], seed);
    }

    [Fact]
    public void GatherElements_IndexOutOfRange_IsAnArgumentException()
    {
        Shape xs = new(2, 3), ids = new(2, 2);
        using var x = _dev.FromHost(KernelLab.RandomFloats(new Random(1), 6), xs);
        using var ind = _dev.FromHost([0f, 1f, 3f, -1f], ids);
        using var y = _dev.FromHost(new float[4], ids);
        var e = Assert.Throws<ArgumentException>(() => new GatherElementsOp(1).Run(_dev, [x, ind], y));
        Assert.Contains("out of range", e.Message);
        Assert.Contains("gather_elements", e.Message);
        // The flag is cleared per run: a good run after a bad one passes.
        using var good = _dev.FromHost([0f, 1f, 2f, -3f], ids);
        new GatherElementsOp(1).Run(_dev, [x, good], y);
    }

    [Fact]
    public void CumSumHardmaxTileShrinkTrilu_RandomShapes()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 10; trial++)
        {
            var shape = new Shape(RandomDims(rng, trial % 4 + 1));
            int axis = rng.Next(shape.Rank);
            Shape[] shapes = [shape];
            var x = KernelLab.RandomFloats(rng, shape.Elements);
            foreach (bool exclusive in new[] { false, true })
                foreach (bool reverse in new[] { false, true })
                    Close(new CumSumOp(axis, exclusive, reverse), shapes, [x], seed);
            Exact(new HardmaxOp(axis), shapes, [TiedFloats(rng, shape.Elements)], seed);
            Exact(new TileOp(shape.Dims.ToArray().Select(_ => rng.Next(0, 4)).ToArray()), shapes, [x], seed);
            Close(new ShrinkOp((float)rng.NextDouble(), (float)rng.NextDouble()), shapes, [x], seed, 1e-6);
            if (shape.Rank >= 2)
                foreach (bool upper in new[] { true, false })
                    Exact(new TriluOp(upper, rng.Next(-3, 4)), shapes, [x], seed);
        }
        // A k far past the matrix: everything kept, or everything zero.
        var m = new Shape(2, 3, 4);
        var xm = KernelLab.RandomFloats(rng, m.Elements);
        Exact(new TriluOp(true, -(1L << 40)), [m], [xm], seed);
        Exact(new TriluOp(true, 1L << 40), [m], [xm], seed);
    }

    [Fact]
    public void MaxPoolIndices_BothStorageOrders_Ties()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 9; trial++)
        {
            int sp = trial % 3 + 1;
            var k = RandomDims(rng, sp, 3);
            var s = RandomDims(rng, sp, 2);
            var d = RandomDims(rng, sp, 2);
            var pb = k.Select(v => rng.Next(0, v)).ToArray();
            var pe = k.Select(v => rng.Next(0, v)).ToArray();
            var dims = new[] { rng.Next(1, 3), rng.Next(1, 4) }.Concat(k.Select((v, i) => (v - 1) * d[i] + 1 + rng.Next(0, 4))).ToArray();
            var shape = new Shape(dims);
            var x = TiedFloats(rng, shape.Elements);
            foreach (int order in new[] { 0, 1 })
                Exact(new MaxPoolIndicesOp(k, s, d, pb, pe, rng.Next(2) == 0, order), [shape], [x], seed);
        }
    }

    [Fact]
    public void Where_BroadcastOfAllThree()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 10; trial++)
        {
            var a = RandomDims(rng, trial % 4 + 1);
            var cond = a.Select(n => rng.Next(2) == 0 ? 1 : n).ToArray();
            var b = a.Skip(rng.Next(a.Length)).Select(n => rng.Next(3) == 0 ? 1 : n).ToArray();
            Shape cs = new(cond), sa = new(a), sb = new(b);
            var c = Enumerable.Range(0, (int)cs.Elements).Select(_ => (float)rng.Next(2)).ToArray();
            Exact(new WhereOp(), [cs, sa, sb], [c, KernelLab.RandomFloats(rng, sa.Elements), KernelLab.RandomFloats(rng, sb.Elements)], seed);
        }
    }

    [Fact]
    public void Einsum_OneAndTwoOperands_Diagonals_FullSums()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 6; trial++)
        {
            int b = rng.Next(1, 4), i = rng.Next(1, 6), j = rng.Next(1, 6), k = rng.Next(1, 6);
            (string Eq, Shape[] Shapes)[] cases =
            [
                ("bij,bjk->bik", [new(b, i, j), new(b, j, k)]),
                ("ij,j", [new(i, j), new(j)]),
                ("i,i", [new(i), new(i)]),
                ("bij->jb", [new(b, i, j)]),
                ("bii->bi", [new(b, i, i)]),
                ("ii", [new(i, i)]),
                ("ij->", [new(i, j)]),
                ("ij,kj->ik", [new(i, j), new(k, j)]),
            ];
            foreach (var (eq, shapes) in cases)
                Close(new EinsumOp(eq), shapes, shapes.Select(s => KernelLab.RandomFloats(rng, s.Elements)).ToArray(), seed);
        }
        // Three operands have no kernel: the device says so, naming the op.
        Shape v = new(3);
        var e = Assert.Throws<OpNotOnDeviceException>(() => Run(new EinsumOp("i,i,i->i"), [v, v, v], [[1, 2, 3], [1, 2, 3], [1, 2, 3]]));
        Assert.Equal("ilgpu-cpu", e.Device);
    }

    [Fact]
    public void Tensors_PastTwoToThe31_AreArgumentExceptions()
    {
        Assert.Throws<ArgumentException>(() => GatherElementsLayout.Create([65536, 65536], [65536, 65536], 0));
        Assert.Throws<ArgumentException>(() => _dev.AxisKernels.CumSum(false, false, 65536, 65536, 1, default, default));
        Assert.Throws<ArgumentException>(() => GpuAnomaly.Kernels.Elementwise.WhereLayout.Create([65536, 65536], [0, 0], [0, 0], [0, 0]));
    }
}
