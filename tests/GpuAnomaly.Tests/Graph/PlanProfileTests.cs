using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Benchmarks;
using GpuAnomaly.Kernels.Conv;
using Xunit;

namespace GpuAnomaly.Tests.GraphEngine;

/// <summary>`bench --profile`'s engine side: a profiled run computes what a plain run does, and every node is accounted for.</summary>
public class PlanProfileTests
{
    private static (Graph Graph, Conv2dParams Conv) SmallNet(Random rng)
    {
        var b = new GraphBuilder();
        var x = b.Input("x", new Shape(2, 3, 11, 9));
        var w = b.Constant("w", KernelLab.RandomFloats(rng, 5 * 3 * 3 * 3), new Shape(5, 3, 3, 3));
        var bias = b.Constant("b", KernelLab.RandomFloats(rng, 5), new Shape(5));
        var options = new Conv2dOptions(padding: 1);
        var c = b.Conv2d(x, w, bias, options, "conv");
        var r = b.LeakyRelu(c, 0.1f, "act");
        var p = b.MaxPool2d(r, 2, name: "pool");
        b.Output("y", b.Add(p, p, "twice"));
        var conv = new Conv2dOp(options).Params(new Shape(2, 3, 11, 9), new Shape(5, 3, 3, 3), new Shape(5));
        return (b.Build(), conv);
    }

    [Fact]
    public void ProfiledRuns_GiveThePlainRunsOutputs_AndOneRowPerNode()
    {
        var rng = KernelLab.NewRng(out int seed);
        var (graph, conv) = SmallNet(rng);
        using var device = new CpuDevice();
        using var exec = new Executor(graph, device);
        var input = KernelLab.RandomFloats(rng, 2 * 3 * 11 * 9);
        var expected = exec.RunToHost(("x", input))["y"];
        exec.Output("y").CopyFrom(new float[expected.Length].Select(_ => float.NaN).ToArray()); // poison

        var times = new double[graph.Nodes.Count];
        exec.RunProfiled(times);
        Assert.Equal(expected, exec.Output("y").ToArray());
        Assert.All(times, t => Assert.True(t >= 0 && double.IsFinite(t), $"seed {seed}: node time {t}"));

        var profile = PlanProfile.Measure(exec, repeat: 3, warmup: 1);
        Assert.Equal(graph.Nodes.Select(n => n.Name), profile.Nodes.Select(n => n.Name));
        Assert.Equal(conv.Flops, profile.Nodes[0].Flops);
        Assert.Equal(0, profile.Nodes[1].Flops); // leaky_relu: memory traffic, reported as GB/s
        Assert.Equal(2.0 * 2 * 5 * 11 * 9 * 4, profile.Nodes[1].Bytes);
        Assert.True(profile.TotalMs > 0);
        Assert.Equal(graph.Nodes.Count, profile.ByKind(graph).Sum(k => k.Count));
    }

    [Fact]
    public void RunProfiled_RefusesAWrongTimingBuffer_AndMissingInputs()
    {
        var (graph, _) = SmallNet(KernelLab.NewRng(out _));
        using var device = new CpuDevice();
        using var exec = new Executor(graph, device);
        Assert.Throws<GraphInputException>(() => exec.RunProfiled(new double[graph.Nodes.Count]));
        exec.SetInput("x", new float[2 * 3 * 11 * 9]);
        Assert.Throws<ArgumentException>(() => exec.RunProfiled(new double[graph.Nodes.Count + 1]));
    }
}
