using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;
using Xunit;
using Xunit.Abstractions;
using static GpuAnomaly.Tests.Onnx.OnnxProtos;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// The importer's PatchCore distance pattern (OnnxImporter.Knn.cs): ||q||^2 - 2 q.M^T + ||M||^2 -> ReduceMin with a
/// clamp at 0 becomes one <see cref="KnnOp"/>; where it must not fire (no clamp, a value read twice, a scale that is
/// not positive) the nodes run as written. Graphs of random sizes built here, and the PyTorch exports of
/// tools/export/onnx_models_fixtures.py.
/// </summary>
public sealed class OnnxKnnPatternTests(ITestOutputHelper log)
{
    private static ProtoBuilder Floats(string name, long[] dims, float[] v) =>
        Tensor(name, FloatType, dims, v.SelectMany(BitConverter.GetBytes).ToArray());

    private static ProtoBuilder Ints(string name, params long[] v) => Tensor(name, Int64Type, [v.Length], v.SelectMany(BitConverter.GetBytes).ToArray());

    private static ProtoBuilder IntsAttribute(string name, params long[] v) => new ProtoBuilder().String(1, name).Int(20, 7).Packed(8, v);

    private sealed record Case(int Q, int D, int N, float[] Queries, float[] Bank, bool ScaleFirst, bool ClampFirst, bool KeepDims);

    private static Case RandomCase(Random rng, bool scaleFirst, bool clampFirst, bool keepDims)
    {
        int q = rng.Next(1, 40), d = rng.Next(1, 20), n = rng.Next(1, 50);
        var bank = KernelLab.RandomFloats(rng, (long)n * d);
        // Bank rows plus noise: nearest distances well below the norms, as for real patches.
        var noise = KernelLab.RandomFloats(rng, (long)q * d, 0.5f);
        var queries = new float[q * d];
        for (int i = 0; i < q; i++)
        {
            int row = rng.Next(n);
            for (int k = 0; k < d; k++) queries[i * d + k] = bank[row * d + k] + noise[i * d + k];
        }
        return new Case(q, d, n, queries, bank, scaleFirst, clampFirst, keepDims);
    }

    /// <summary>The exporter's graph (opset 13) for case <paramref name="k"/>; <paramref name="scale"/> is the 2 of -2 q.M^T.</summary>
    private static OnnxModel Build(Case k, float scale = 2, bool clamp = true, bool distancesOut = false, int? queryWidth = null)
    {
        var w = new float[k.D * k.N];
        var norms = new float[k.N];
        for (int j = 0; j < k.N; j++)
            for (int i = 0; i < k.D; i++)
            {
                float m = k.Bank[j * k.D + i];
                w[i * k.N + j] = m;
                norms[j] += m * m;
            }
        List<ProtoBuilder> nodes =
        [
            Node("Pow", ["q", "two"], ["sq"], "pow"),
            Node("ReduceSum", ["sq", "axis1"], ["a"], "sum", IntAttribute("keepdims", 1)),
            .. k.ScaleFirst
                ? new[] { Node("Mul", ["q", "s"], ["qs"], "scale"), Node("MatMul", ["qs", "w"], ["b"], "matmul") }
                : [Node("MatMul", ["q", "w"], ["qw"], "matmul"), Node("Mul", ["s", "qw"], ["b"], "scale")],
            Node("Sub", ["a", "b"], ["diff"], "sub"),
            Node("Add", ["norms", "diff"], ["d"], "add"),
        ];
        string min = "d";
        if (clamp && k.ClampFirst)
        {
            nodes.Add(Node("Clip", ["d", "zero"], ["dc"], "clamp"));
            min = "dc";
        }
        nodes.Add(Node("ReduceMin", [min], [clamp && !k.ClampFirst ? "m" : "y"], "min", IntsAttribute("axes", -1), IntAttribute("keepdims", k.KeepDims ? 1 : 0)));
        if (clamp && !k.ClampFirst) nodes.Add(Node("Relu", ["m"], ["y"], "relu"));
        long[] yDims = k.KeepDims ? [k.Q, 1] : [k.Q];
        var graph = Graph([.. nodes],
            [Floats("two", [], [2]), Floats("s", [], [scale]), Floats("zero", [], [0]), Ints("axis1", 1), Floats("w", [k.D, k.N], w), Floats("norms", [k.N], norms)],
            [ValueInfo("q", FloatType, k.Q, queryWidth ?? k.D)],
            [ValueInfo("y", FloatType, yDims), .. distancesOut ? new[] { ValueInfo("d", FloatType, k.Q, k.N) } : []]);
        return OnnxModel.Parse(Model(graph), "knn_pattern.onnx", null);
    }

    /// <summary>
    /// The subgraph's value in float64: each query's smallest |q|^2 - s q.m + |m|^2 (clamped at 0 when asked), and in
    /// <paramref name="magnitude"/> the size of the three terms that gave it, |q|^2 + |s q.m| + |m|^2. The subgraph (and
    /// the kNN kernels, which keep its expansion) cancel terms of order |q|^2 down to a distance that can be far smaller
    /// (D = 1, a query next to its bank row): float32 is then exact only to its epsilon of the terms, not of the result.
    /// </summary>
    private static double[] Reference(Case k, out double[] magnitude, double scale = 2, bool clamp = true)
    {
        var y = new double[k.Q];
        magnitude = new double[k.Q];
        for (int i = 0; i < k.Q; i++)
        {
            double best = double.PositiveInfinity, size = 0;
            for (int j = 0; j < k.N; j++)
            {
                double qq = 0, qm = 0, mm = 0;
                for (int t = 0; t < k.D; t++)
                {
                    double a = k.Queries[i * k.D + t], b = k.Bank[j * k.D + t];
                    qq += a * a;
                    qm += a * b;
                    mm += b * b;
                }
                double d = clamp && k.ClampFirst ? Math.Max(0, qq - scale * qm + mm) : qq - scale * qm + mm;
                if (d < best)
                {
                    best = d;
                    size = qq + Math.Abs(scale * qm) + mm;
                }
            }
            y[i] = clamp ? Math.Max(0, best) : best;
            magnitude[i] = size;
        }
        return y;
    }

    private static float[] Run(OnnxModel model, Case k, string device, out Graph graph)
    {
        var imported = OnnxImporter.Import(model);
        graph = imported.Graph!;
        using var dev = Device.Open(device);
        using var exec = new Executor(graph, dev);
        var y = exec.Output("y");
        y.CopyFrom(Enumerable.Repeat(float.NaN, (int)y.Shape.Elements).ToArray());
        exec.SetInput("q", k.Queries);
        exec.Run();
        return y.ToArray();
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("ilgpu-cpu")]
    public void DistanceAndMin_BecomeOneKnnOp_AndMatchTheSubgraph(string device)
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int trial = 0; trial < 8; trial++)
        {
            var k = RandomCase(rng, scaleFirst: trial % 2 == 0, clampFirst: trial / 2 % 2 == 0, keepDims: trial / 4 == 0);
            var y = Run(Build(k), k, device, out var graph);
            string at = $"{k} (seed {seed})";
            Assert.True(graph.Nodes.Count(n => n.Op is KnnOp) == 1, at);
            Assert.True(!graph.Nodes.Any(n => n.Op is MatMulOp or LinearOp or ReduceOp or BroadcastBinaryOp or UnaryMathOp or ReluOp), $"{at}: {string.Join(", ", graph.Nodes.Select(n => n.Op))}");
            Assert.Equal(k.KeepDims ? new Shape(k.Q, 1) : new Shape(k.Q), graph.Outputs.Single().Value.Shape);
            KernelLab.AssertCloseToMagnitude(y, Reference(k, out var size), size, 1e-5, at);
        }
    }

    [Fact]
    public void WhereTheKnnWouldDiffer_TheNodesRunAsWritten()
    {
        var rng = KernelLab.NewRng(out int seed);
        // No clamp: the kNN kernels clamp at 0, the subgraph does not.
        var k = RandomCase(rng, scaleFirst: true, clampFirst: false, keepDims: false);
        var y = Run(Build(k, clamp: false), k, "cpu", out var graph);
        Assert.DoesNotContain(graph.Nodes, n => n.Op is KnnOp);
        Assert.Contains(graph.Nodes, n => n.Op is LinearOp);
        KernelLab.AssertCloseToMagnitude(y, Reference(k, out var size, clamp: false), size, 1e-5, $"unclamped (seed {seed})");

        // A scale that is not positive: M = (s / 2) W^T would be wrong-signed; held back at the min, emitted as written.
        k = RandomCase(rng, scaleFirst: false, clampFirst: true, keepDims: true);
        y = Run(Build(k, scale: -2), k, "cpu", out graph);
        Assert.DoesNotContain(graph.Nodes, n => n.Op is KnnOp);
        KernelLab.AssertCloseToMagnitude(y, Reference(k, out size, scale: -2), size, 1e-5, $"scale -2 (seed {seed})");

        // The distances are also a graph output: computed, so not replaced.
        k = RandomCase(rng, scaleFirst: true, clampFirst: false, keepDims: true);
        var imported = OnnxImporter.Import(Build(k, distancesOut: true));
        Assert.DoesNotContain(imported.Graph!.Nodes, n => n.Op is KnnOp);
        Assert.Equal(new Shape(k.Q, k.N), imported.Outputs.Single(o => o.Name == "d").Shape);
    }

    [Fact]
    public void HeldNodes_ThatCannotImport_AreNamed_AndBadKnnShapesAreRefused()
    {
        // W's rows do not match q's width: the pattern holds the nodes back, then the MatMul is refused by name.
        var rng = KernelLab.NewRng(out _);
        var k = RandomCase(rng, scaleFirst: true, clampFirst: true, keepDims: false);
        var bad = k with { D = k.D + 1, Bank = KernelLab.RandomFloats(rng, (long)k.N * (k.D + 1)) };
        var e = Assert.Throws<OnnxImportException>(() => OnnxImporter.Import(Build(bad, queryWidth: k.D)));
        Assert.Contains("'matmul'", e.Message);

        var op = new KnnOp(1);
        var shapes = new[] { new Shape(5, 3), new Shape(7, 4), new Shape(7) };
        var a = Assert.Throws<ArgumentException>(() => op.InferShape(shapes));
        Assert.Contains("[5, 3]", a.Message);
        Assert.Throws<ArgumentException>(() => new KnnOp(9).InferShape([new Shape(5, 3), new Shape(7, 3), new Shape(7)]));
        Assert.Equal(new Shape(5, 2), new KnnOp(2).InferShape([new Shape(5, 3), new Shape(7, 3), new Shape(7)]));
    }

    /// <summary>torch.onnx.export's form of the same (Mul(q, 2) then MatMul by the folded M^T, Unsqueeze of the norms).</summary>
    [Theory]
    [InlineData("knn_distance", "cpu")]
    [InlineData("knn_distance", "ilgpu-cpu")]
    [InlineData("knn_distance_clamp_first", "cpu")]
    [InlineData("knn_distance_clamp_first", "ilgpu-cpu")]
    public void TorchExport_UsesTheKnnOp_AndMatchesPyTorch(string model, string device)
    {
        var graph = OnnxImporter.Import(OnnxModel.Load(OnnxModelFixtures.PathOf(model, ".onnx")), new OnnxImportOptions { BatchSize = 37 }).Graph!;
        Assert.Single(graph.Nodes, n => n.Op is KnnOp);
        Assert.DoesNotContain(graph.Nodes, n => n.Op is MatMulOp or LinearOp);
        OnnxModelTests.MatchPyTorch(model, device, out var report);
        log.WriteLine(report);
    }

    [Fact]
    public void TorchExport_WithoutAClamp_StaysOnTheGenericOps()
    {
        var graph = OnnxImporter.Import(OnnxModel.Load(OnnxModelFixtures.PathOf("knn_distance_unclamped", ".onnx")), new OnnxImportOptions { BatchSize = 37 }).Graph!;
        Assert.DoesNotContain(graph.Nodes, n => n.Op is KnnOp);
        OnnxModelTests.MatchPyTorch("knn_distance_unclamped", "cpu", out var report);
        log.WriteLine(report);
    }

    /// <summary>The PatchCore-style model's distance (needs Resize to import: branch ops).</summary>
    [Fact]
    public void PatchCoreTiny_ScoresPatchesWithTheKnnOp()
    {
        var graph = OnnxImporter.Import(OnnxModel.Load(OnnxModelFixtures.PathOf("patchcore_tiny", ".onnx")), new OnnxImportOptions { BatchSize = 2 }).Graph!;
        var knn = Assert.Single(graph.Nodes, n => n.Op is KnnOp);
        Assert.Equal(new Shape(2 * 8 * 8, 48), knn.Inputs[0].Shape);
        Assert.Equal(new Shape(300, 48), knn.Inputs[1].Shape);
        Assert.DoesNotContain(graph.Nodes, n => n.Op is MatMulOp or LinearOp);
    }
}
