using GpuAnomaly.Engine;
using Xunit;

namespace GpuAnomaly.Tests.GraphEngine;

/// <summary>The executor with host-code test ops: results, reuse across runs, no allocation after setup, input errors.</summary>
public class ExecutorTests
{
    [Fact]
    public void RandomDags_MatchHostEvaluation_RepeatedRunsAllocateNothing()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int t = 0; t < 25; t++)
        {
            var dag = RandomDag.Create(rng, rng.Next(1, 40));
            using var device = new CountingDevice();
            using var exec = new Executor(dag.Graph, device);
            int allocations = device.Allocations;
            Assert.Equal(exec.Plan.TotalDeviceBytes, device.AllocatedBytes);
            Dictionary<string, float[]>? previous = null;
            for (int run = 0; run < 3; run++)
            {
                // Fresh inputs on the first two runs; the third repeats the second and must give the same outputs.
                var feed = run < 2 ? dag.Inputs.ToDictionary(kv => kv.Key, kv => KernelLab.RandomFloats(rng, kv.Value.Length)) : previous!;
                previous = feed;
                var expected = dag.Evaluate(feed);
                var actual = exec.RunToHost(feed);
                Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
                foreach (var (name, y) in expected)
                    Assert.True(y.AsSpan().SequenceEqual(actual[name]), $"seed {seed}, dag {t}, run {run}, output {name}\n{dag.Graph}");
                Assert.Equal(allocations, device.Allocations);
            }
        }
    }

    [Fact]
    public void OutputTensors_HoldTheResults_AndSetInputKeepsValues()
    {
        var rng = KernelLab.NewRng(out int seed);
        var b = new GraphBuilder();
        var x = b.Input("x", new Shape(3, 50));
        var op = new MixOp(rng, 1, new Shape(120));
        var y = b.Apply(op, x);
        b.Output("y", y);
        b.Output("same_input", x);
        using var device = new CpuDevice();
        using var exec = new Executor(b.Build(), device);
        var data = KernelLab.RandomFloats(rng, 150);
        exec.SetInput("x", data);
        exec.Run();
        var first = exec.Output("y").ToArray();
        Assert.Equal(op.Compute([data], 120), first);
        Assert.Equal(data, exec.Outputs["same_input"].ToArray());
        exec.Run(); // inputs stay set
        Assert.Equal(first, exec.Output("y").ToArray());
        Assert.Throws<ArgumentException>(() => exec.Output("nope"));
    }

    [Fact]
    public void WrongInputs_GiveClearErrors()
    {
        var rng = KernelLab.NewRng(out _);
        var b = new GraphBuilder();
        var x = b.Input("image", new Shape(1, 3, 4, 4));
        var m = b.Input("mask", new Shape(16));
        b.Output("y", b.Apply(new MixOp(rng, 2, new Shape(5)), x, m));
        using var device = new CpuDevice();
        using var exec = new Executor(b.Build(), device);
        var image = KernelLab.RandomFloats(rng, 48);
        var mask = KernelLab.RandomFloats(rng, 16);

        var e = Assert.Throws<GraphInputException>(() => exec.Run(("image", image), ("mask", mask), ("imgae", image)));
        Assert.Equal("imgae", e.Input);
        Assert.Contains("unknown input 'imgae'", e.Message);
        Assert.Contains("image [1, 3, 4, 4]", e.Message);

        e = Assert.Throws<GraphInputException>(() => exec.Run(("image", new float[47]), ("mask", mask)));
        Assert.Equal("input 'image' expects 48 values (shape [1, 3, 4, 4]), got 47", e.Message);

        e = Assert.Throws<GraphInputException>(() => exec.Run(("image", image)));
        Assert.Equal("input 'mask' (shape [16]) was not given", e.Message);
        using (var fresh = new Executor(exec.Graph, device))
        {
            fresh.SetInput("image", image);
            e = Assert.Throws<GraphInputException>(() => fresh.Run());
            Assert.Equal("mask", e.Input);
        }
        Assert.IsAssignableFrom<GpuAnomalyException>(e);

        exec.Run(("image", image), ("mask", mask));
    }

    [Fact]
    public void ConstantTensorOnAnotherDevice_IsCopied()
    {
        var rng = KernelLab.NewRng(out _);
        using var other = new CpuDevice();
        var data = KernelLab.RandomFloats(rng, 12);
        using var weight = other.FromHost(data, new Shape(3, 4));
        var b = new GraphBuilder();
        var op = new MixOp(rng, 1, new Shape(5));
        b.Output("y", b.Apply(op, b.Constant("w", weight)));
        using var device = new CpuDevice();
        using var exec = new Executor(b.Build(), device);
        Assert.Equal(op.Compute([data], 5), exec.RunToHost()["y"]);
        Assert.Same(device, exec.Output("y").Device);
    }

    [Fact]
    public void Dispose_FreesOwnedMemory_KeepsCallerConstants()
    {
        var rng = KernelLab.NewRng(out _);
        using var device = new CpuDevice();
        using var weight = device.FromHost(KernelLab.RandomFloats(rng, 10), new Shape(10));
        var b = new GraphBuilder();
        var x = b.Input("x", new Shape(10));
        var c = b.Constant("w", weight);
        var h = b.Constant("h", KernelLab.RandomFloats(rng, 6), new Shape(2, 3));
        var t = b.Apply(new MixOp(rng, 3, new Shape(30)), x, c, h);
        b.Output("y", b.Apply(new MixOp(rng, 1, new Shape(4)), t));
        var exec = new Executor(b.Build(), device);
        var output = exec.Output("y");
        exec.Run(("x", KernelLab.RandomFloats(rng, 10)));
        exec.Dispose();
        Assert.True(output.Memory.IsDisposed);
        Assert.False(weight.Memory.IsDisposed); // used in place: the caller owns it
        Assert.Throws<ObjectDisposedException>(() => exec.Run());
        exec.Dispose();
    }
}
