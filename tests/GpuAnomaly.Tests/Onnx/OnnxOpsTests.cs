using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;
using GpuAnomaly.Kernels.Resize;
using Xunit;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// Resize, ConvTranspose, Pad modes, MaxPool's Indices, ArgMax / ArgMin, TopK, GatherElements, Where: the semantics
/// against PyTorch / numpy (Fixtures/onnx_ops, tools/export/onnx_ops_fixtures.py), the cpu op and the ILGPU kernels
/// against the float64 reference on random shapes (poisoned outputs), and the typed refusals.
/// </summary>
public sealed class OnnxOpsTests
{
    private static string Fixture(string dir, string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", dir, name);

    private static string[] CaseNames() => [.. Directory.GetDirectories(Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx_ops"))
        .Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal)];

    public static TheoryData<string> Cases() => [.. CaseNames()];

    public static TheoryData<string> GpuCases() => [.. CaseNames().Where(c => c.StartsWith("resize") || c.StartsWith("conv_transpose") || c.StartsWith("upsample"))];

    /// <summary>A backend-layout case: inputs by position, outputs compared (floats by relative L2, integers and bools exactly).</summary>
    private static void RunCase(string name, string device)
    {
        var dir = Fixture("onnx_ops", name);
        var model = OnnxModel.Load(Path.Combine(dir, "model.onnx"));
        var inputs = new Dictionary<string, HostTensor>();
        for (int i = 0; File.Exists(Path.Combine(dir, "test_data_set_0", $"input_{i}.pb")); i++)
            inputs[model.Graph.RuntimeInputs[i].Name] = HostTensor.From(OnnxTensor.Load(Path.Combine(dir, "test_data_set_0", $"input_{i}.pb")));
        using var dev = Device.Open(device);
        var results = OnnxInference.Run(model, inputs, dev);
        for (int i = 0; i < model.Graph.Outputs.Count; i++)
        {
            var expected = HostTensor.From(OnnxTensor.Load(Path.Combine(dir, "test_data_set_0", $"output_{i}.pb")));
            var actual = results[model.Graph.Outputs[i].Name];
            Assert.Equal(expected.Shape, actual.Shape);
            Assert.Equal(expected.Type, actual.Type);
            if (expected.IsFloat) KernelLab.AssertClose(actual.Floats(), expected.Data, 1e-5, $"{name} output {i} on {device}");
            else Assert.Equal(expected.Data, actual.Data);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fixture_MatchesTorchAndNumpy_OnCpu(string name) => RunCase(name, "cpu");

    /// <summary>The Resize and ConvTranspose kernels on the CPU emulator, against the same PyTorch values.</summary>
    [Theory]
    [MemberData(nameof(GpuCases))]
    public void Fixture_MatchesTorch_OnIlgpuCpu(string name) => RunCase(name, "ilgpu-cpu");

    private static int[] RandomDims(Random rng, int rank, int max = 6) => Enumerable.Range(0, rank).Select(_ => rng.Next(1, max + 1)).ToArray();

    /// <summary>Runs the op on a device into a NaN-poisoned output; returns it with the float64 reference.</summary>
    private static (float[] Actual, double[] Expected) Run(HostKernelOp op, Shape[] shapes, float[][] host, string device)
    {
        var expected = op.Reference(host.Select(h => h.Select(v => (double)v).ToArray()).ToArray(), shapes, out var shape);
        using var dev = Device.Open(device);
        var inputs = host.Select((h, i) => dev.FromHost(h, shapes[i])).ToArray();
        using var y = dev.FromHost(Enumerable.Repeat(float.NaN, (int)shape.Elements).ToArray(), shape);
        op.Run(dev, inputs, y);
        dev.Synchronize();
        var actual = y.ToArray();
        foreach (var t in inputs) t.Dispose();
        return (actual, expected);
    }

    private static void Check(HostKernelOp op, Shape[] shapes, Random rng, int seed, string device = "cpu", double tol = 1e-5)
    {
        var host = shapes.Select(s => KernelLab.RandomFloats(rng, s.Elements)).ToArray();
        var (actual, expected) = Run(op, shapes, host, device);
        if (expected.Length > 0) KernelLab.AssertClose(actual, expected, tol, $"{op} on {string.Join(", ", shapes.Select(s => s.ToString()))} on {device} (seed {seed})");
    }

    private static ResizeOp RandomResize(Random rng, int[] x, int maxOut)
    {
        var mode = (ResizeMode)rng.Next(3);
        var coord = (ResizeCoordinate)rng.Next(7);
        var sizes = x.Select((d, a) => a < x.Length - 2 && rng.Next(2) == 0 ? d : rng.Next(1, maxOut + 1)).ToArray();
        // Scales from the sizes, or given (then the size is floor(scale * in) and the coordinates use the scale).
        bool given = rng.Next(2) == 0;
        var scales = x.Select((d, a) => given ? sizes[a] / (double)d * (0.9 + 0.2 * rng.NextDouble()) : sizes[a] / (double)d).ToArray();
        if (given) sizes = x.Select((d, a) => Math.Max(1, (int)Math.Floor(scales[a] * d))).ToArray();
        double[] roi = [.. x.Select(_ => rng.NextDouble() * 0.4), .. x.Select(_ => 0.6 + rng.NextDouble() * 0.6)];
        var options = new ResizeOptions(mode, coord, (ResizeNearest)rng.Next(4), -0.5 - 0.25 * rng.Next(2), rng.Next(2) == 0, 0.5f);
        return new ResizeOp(sizes, scales, options, roi);
    }

    [Fact]
    public void Resize_RandomShapesModesAndCoordinates_Cpu()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 40; trial++)
        {
            var x = RandomDims(rng, rng.Next(1, 5), 7);
            Check(RandomResize(rng, x, 9), [new Shape(x)], rng, seed);
        }
    }

    [Fact]
    public void Resize_RandomShapes_OnIlgpuCpu()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 16; trial++)
        {
            var x = RandomDims(rng, rng.Next(1, 5), 5);
            Check(RandomResize(rng, x, 6), [new Shape(x)], rng, seed, "ilgpu-cpu");
        }
        // PatchCore's upsampling: bilinear, align_corners = False, batch > 1.
        var b = new[] { 2, 3, 5, 7 };
        Check(new ResizeOp([2, 3, 11, 13], [1, 1, 11 / 5.0, 13 / 7.0], new ResizeOptions(ResizeMode.Linear, ResizeCoordinate.PytorchHalfPixel)),
            [new Shape(b)], rng, seed, "ilgpu-cpu");
        // 5 axes with identity batch and channels merge onto the 4-axis kernel.
        Check(new ResizeOp([2, 3, 3, 4, 2], [1, 1, 1.5, 4 / 3.0, 0.5], new ResizeOptions(ResizeMode.Linear, ResizeCoordinate.HalfPixel)),
            [new Shape(2, 3, 2, 3, 4)], rng, seed, "ilgpu-cpu");
    }

    private static (ConvTransposeOp Op, Shape[] Shapes) RandomConvTranspose(Random rng, int sp, int max)
    {
        int g = rng.Next(1, 3), cin = g * rng.Next(1, 3), coutG = rng.Next(1, 3);
        var k = RandomDims(rng, sp, 3);
        var s = RandomDims(rng, sp, 3);
        var d = RandomDims(rng, sp, 2);
        var x = new[] { rng.Next(1, 3), cin }.Concat(RandomDims(rng, sp, max)).ToArray();
        var pb = k.Select(v => rng.Next(0, v)).ToArray();
        var outPad = s.Select(v => rng.Next(0, v)).ToArray();
        // The full size less the pads, at least 1 (a size past the full output is allowed: bias-only pixels).
        var size = Enumerable.Range(0, sp).Select(a => Math.Max(1, s[a] * (x[a + 2] - 1) + outPad[a] + (k[a] - 1) * d[a] + 1 - pb[a] - rng.Next(0, k[a]))).ToArray();
        Shape[] shapes = rng.Next(2) == 0
            ? [new Shape(x), new Shape([cin, coutG, .. k]), new Shape(coutG * g)]
            : [new Shape(x), new Shape([cin, coutG, .. k])];
        return (new ConvTransposeOp(s, d, pb, size, g), shapes);
    }

    [Fact]
    public void ConvTranspose_RandomShapes_CpuAndIlgpuCpu()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 24; trial++)
        {
            var (op, shapes) = RandomConvTranspose(rng, rng.Next(1, 4), 5);
            Check(op, shapes, rng, seed);
        }
        for (int trial = 0; trial < 10; trial++)
        {
            var (op, shapes) = RandomConvTranspose(rng, rng.Next(1, 4), 3);
            Check(op, shapes, rng, seed, "ilgpu-cpu");
        }
    }

    [Fact]
    public void PadModes_RandomShapesAndPads_IncludingCropsAndPadsWiderThanTheAxis()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (var mode in new[] { PadMode.Edge, PadMode.Reflect, PadMode.Wrap })
            for (int trial = 0; trial < 8; trial++)
            {
                var x = RandomDims(rng, rng.Next(1, 5));
                var begin = x.Select(d => (long)rng.Next(-d / 2, 2 * d + 1)).ToArray();
                var end = x.Select(d => (long)rng.Next(-d / 2, 2 * d + 1)).ToArray();
                Check(new PadOp(begin, end, 0, mode), [new Shape(x)], rng, seed);
            }
        // numpy's np.pad on [1 2 3] by 4 on each side.
        Assert.Equal([1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3], Enumerable.Range(0, 11).Select(o => 1 + NdPad.Source(PadMode.Reflect, o, 4, 3)));
        Assert.Equal([3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1], Enumerable.Range(0, 11).Select(o => 1 + NdPad.Source(PadMode.Wrap, o, 4, 3)));
        Assert.Equal([1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 3], Enumerable.Range(0, 11).Select(o => 1 + NdPad.Source(PadMode.Edge, o, 4, 3)));
    }

    /// <summary>
    /// The index ops on cpu against their reference, and each index checked against the values independently: the
    /// element an ArgMax / TopK / MaxPool index names holds the reported extreme.
    /// </summary>
    [Fact]
    public void IndexOps_RandomShapes_IndicesNameTheirValues()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 10; trial++)
        {
            var dims = RandomDims(rng, rng.Next(1, 5), 7);
            int axis = rng.Next(dims.Length);
            var shape = new Shape(dims);
            var x = KernelLab.RandomFloats(rng, shape.Elements);
            var (outer, n, inner) = NdIndex.Split(dims, axis);
            foreach (bool max in new[] { true, false })
            {
                var (idx, idxRef) = Run(new ArgExtremeOp(max, axis, rng.Next(2) == 0, rng.Next(2) == 0), [shape], [x], "cpu");
                Assert.Equal(idxRef, idx.Select(v => (double)v));
                for (long o = 0; o < outer; o++)
                    for (long i = 0; i < inner; i++)
                    {
                        var row = Enumerable.Range(0, n).Select(k => x[o * n * inner + k * inner + i]).ToArray();
                        Assert.Equal(max ? row.Max() : row.Min(), row[(int)idx[o * inner + i]]);
                    }
            }
            int kk = rng.Next(0, n + 1);
            bool largest = rng.Next(2) == 0;
            var (vals, valsRef) = Run(new TopKOp(axis, kk, largest, false), [shape], [x], "cpu");
            var (ind, indRef) = Run(new TopKOp(axis, kk, largest, true), [shape], [x], "cpu");
            Assert.Equal(valsRef, vals.Select(v => (double)v));
            Assert.Equal(indRef, ind.Select(v => (double)v));
            for (long o = 0; o < outer; o++)
                for (long i = 0; i < inner; i++)
                {
                    var row = Enumerable.Range(0, n).Select(k => x[o * n * inner + k * inner + i]).ToArray();
                    var want = (largest ? row.OrderDescending() : row.Order()).Take(kk).ToArray();
                    for (int j = 0; j < kk; j++)
                    {
                        Assert.Equal(want[j], vals[(o * kk + j) * inner + i]);
                        Assert.Equal(want[j], row[(int)ind[(o * kk + j) * inner + i]]);
                    }
                }
        }
        for (int trial = 0; trial < 8; trial++)
        {
            int sp = rng.Next(1, 4);
            var k = RandomDims(rng, sp, 3);
            var s = RandomDims(rng, sp, 3);
            var pb = k.Select(v => rng.Next(0, v)).ToArray();
            var pe = k.Select(v => rng.Next(0, v)).ToArray();
            var dims = new[] { rng.Next(1, 3), rng.Next(1, 4) }.Concat(k.Select(v => v + rng.Next(0, 5))).ToArray();
            var d1 = Enumerable.Repeat(1, sp).ToArray();
            var x = KernelLab.RandomFloats(rng, new Shape(dims).Elements);
            var (y, _) = Run(new PoolNdOp(true, k, s, d1, pb, pe, false, false), [new Shape(dims)], [x], "cpu");
            var (idx, idxRef) = Run(new MaxPoolIndicesOp(k, s, d1, pb, pe, false, 0), [new Shape(dims)], [x], "cpu");
            Assert.Equal(idxRef, idx.Select(v => (double)v));
            for (int i = 0; i < y.Length; i++) Assert.Equal(y[i], x[(int)idx[i]]);
        }
    }

    [Fact]
    public void GatherElementsAndWhere_RandomShapes_Cpu()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 10; trial++)
        {
            var dims = RandomDims(rng, rng.Next(1, 4));
            int axis = rng.Next(dims.Length);
            var idxDims = dims.Select((d, a) => a == axis ? rng.Next(1, 6) : rng.Next(1, d + 1)).ToArray();
            var ind = Enumerable.Range(0, (int)new Shape(idxDims).Elements).Select(_ => (float)rng.Next(-dims[axis], dims[axis])).ToArray();
            var (y, yRef) = Run(new GatherElementsOp(axis), [new Shape(dims), new Shape(idxDims)],
                [KernelLab.RandomFloats(rng, new Shape(dims).Elements), ind], "cpu");
            KernelLab.AssertClose(y, yRef, 0, $"gather_elements (seed {seed})");

            var a = RandomDims(rng, rng.Next(1, 4));
            var cond = a.Select(d => rng.Next(2) == 0 ? 1 : d).ToArray();
            var c = Enumerable.Range(0, (int)new Shape(cond).Elements).Select(_ => (float)rng.Next(2)).ToArray();
            var b = a.Skip(rng.Next(a.Length)).ToArray();
            var (w, wRef) = Run(new WhereOp(), [new Shape(cond), new Shape(a), new Shape(b)],
                [c, KernelLab.RandomFloats(rng, new Shape(a).Elements), KernelLab.RandomFloats(rng, new Shape(b).Elements)], "cpu");
            KernelLab.AssertClose(w, wRef, 0, $"where (seed {seed})");
        }
    }

    [Fact]
    public void TensorOps_RandomShapes_Cpu()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 8; trial++)
        {
            var x = RandomDims(rng, rng.Next(2, 5));
            int axis = rng.Next(x.Length);
            var shapes = new[] { new Shape(x) };
            Check(new TileOp(x.Select(_ => rng.Next(0, 4)).ToArray()), shapes, rng, seed);
            Check(new TriluOp(rng.Next(2) == 0, rng.Next(-4, 5)), shapes, rng, seed);
            Check(new CumSumOp(axis, rng.Next(2) == 0, rng.Next(2) == 0), shapes, rng, seed);
            Check(new HardmaxOp(axis), shapes, rng, seed, tol: 0);
            Check(new ShrinkOp((float)rng.NextDouble(), (float)rng.NextDouble()), shapes, rng, seed);
            // A batched matmul, a contraction to a vector, a transposed sum: einsum against the same float64 reference.
            int b = rng.Next(1, 4), i = rng.Next(1, 6), j = rng.Next(1, 6), k = rng.Next(1, 6);
            Check(new EinsumOp("bij,bjk->bik"), [new Shape(b, i, j), new Shape(b, j, k)], rng, seed);
            Check(new EinsumOp("ij,j"), [new Shape(i, j), new Shape(j)], rng, seed);
            Check(new EinsumOp("bij->jb"), [new Shape(b, i, j)], rng, seed);
        }
        var nan = new FloatClassOp(nan: true).Reference([[1, double.NaN, double.PositiveInfinity]], [new Shape(3)], out _);
        var inf = new FloatClassOp(false, negative: false).Reference([[double.NegativeInfinity, double.NaN, double.PositiveInfinity]], [new Shape(3)], out _);
        Assert.Equal([0, 1, 0], nan);
        Assert.Equal([0, 0, 1], inf);
        Assert.Equal("abc,acd->abd", OnnxImporter.ExpandEllipsis("...bc,...cd->...bd", [3, 3]).Replace("A", "a"));
    }

    [Theory]
    [InlineData("dropout_training", "Dropout(training_mode, ratio 0.25)")]
    [InlineData("batchnorm_training", "BatchNormalization(training_mode)")]
    [InlineData("cast_string", "STRING tensors")]
    [InlineData("sequence_input", "sequence inputs")]
    public void GenuineFeatureGaps_AreOnnxFeatureExceptions(string model, string feature)
    {
        var e = Assert.Throws<OnnxFeatureException>(() => OnnxImporter.Import(OnnxModel.Load(Fixture("onnx_ops_refused", model + ".onnx"))));
        Assert.Equal(feature, e.Feature);
    }

    [Fact]
    public void RuntimeIndices_PastTwoToThe24_AreRefused()
    {
        var e = Assert.Throws<OnnxImportException>(() => OnnxImporter.Import(OnnxModel.Load(Fixture("onnx_ops_refused", "maxpool_indices_past_2p24.onnx"))));
        Assert.Contains("2^24", e.Message);
    }

    [Fact]
    public void OtherIntegerResultsAtRunTime_AreRefused_NamingTheInputToBind()
    {
        var model = OnnxModel.Load(Fixture("onnx_ops_refused", "cast_runtime_to_int64.onnx"));
        var e = Assert.Throws<OnnxImportException>(() => OnnxImporter.Import(model));
        Assert.Equal("x", e.NeedsKnown);
        // OnnxInference holds the data: it binds x and the Cast folds, exactly.
        using var cpu = new CpuDevice();
        var y = OnnxInference.Run(model, new Dictionary<string, HostTensor> { ["x"] = new(OnnxDataType.Float, [3], [2.7, -1.5, 3e6]) }, cpu)["y"];
        Assert.Equal(OnnxDataType.Int64, y.Type);
        Assert.Equal([2, -1, 3e6], y.Data);
    }

    [Fact]
    public void ArgMax_IsARuntimeInt64Output()
    {
        var imported = OnnxImporter.Import(OnnxModel.Load(Fixture("onnx_ops", "argmax_ties_first") + "/model.onnx"));
        var o = Assert.Single(imported.Outputs);
        Assert.Equal(OnnxDataType.Int64, o.ElementType);
        Assert.Null(o.Constant);
        Assert.Contains(imported.Graph!.Nodes, n => n.Op is ArgExtremeOp);
    }
}
