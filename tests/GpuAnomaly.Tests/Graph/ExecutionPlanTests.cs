using GpuAnomaly.Engine;
using Xunit;

namespace GpuAnomaly.Tests.GraphEngine;

/// <summary>Liveness and arena offsets: reuse where lifetimes allow it, never an overlap while both values live.</summary>
public class ExecutionPlanTests
{
    [Fact]
    public void Chain_ReusesBuffers_PeakBelowNaive()
    {
        var rng = KernelLab.NewRng(out int seed);
        var b = new GraphBuilder();
        var v = b.Input("x", new Shape(1000));
        for (int i = 0; i < 10; i++) v = b.Apply(new MixOp(rng, 1, new Shape(1000 + 100 * i)), v);
        b.Output("y", v);
        var plan = b.Build().Plan;
        // 9 intermediates; a chain needs only two live at once.
        Assert.Equal(Enumerable.Range(0, 9).Sum(i => ExecutionPlan.AlignUp(4 * (1000 + 100 * i))), plan.NaiveActivationBytes);
        Assert.True(plan.PeakActivationBytes <= ExecutionPlan.AlignUp(4 * 1800) + ExecutionPlan.AlignUp(4 * 1700),
            $"seed {seed}: peak {plan.PeakActivationBytes}\n{plan}");
        Assert.True(plan.PeakActivationBytes < plan.NaiveActivationBytes / 3);
        Assert.Equal(Storage.Output, plan[v].Storage);
        Assert.Equal(4 * 1900, plan.OutputBytes);
    }

    [Fact]
    public void ElementwiseChain_RunsInPlace()
    {
        var rng = KernelLab.NewRng(out _);
        var b = new GraphBuilder();
        var x = b.Input("x", new Shape(300));
        var a = b.Apply(new MixOp(rng, 1, new Shape(500)), x);
        var r1 = b.Apply(new MixOp(rng, 1, null), a);     // a is still read by r2: not in place
        var r2 = b.Apply(new MixOp(rng, 2, null), r1, a); // r1 dies here: in place of r1
        var r3 = b.Apply(new MixOp(rng, 1, null), r2);    // r2 still read by r4: not in place
        var r4 = b.Apply(new MixOp(rng, 2, null), r3, r2); // r3 dies here: in place of r3
        b.Output("y", b.Apply(new MixOp(rng, 1, new Shape(7)), r4));
        var plan = b.Build().Plan;
        Assert.Null(plan[a].InPlaceOf);
        Assert.Null(plan[r1].InPlaceOf);
        Assert.Equal(r1, plan[r2].InPlaceOf);
        Assert.Null(plan[r3].InPlaceOf);
        Assert.Equal(r3, plan[r4].InPlaceOf);
        Assert.Equal(plan[r3].Offset, plan[r4].Offset);
        CheckNoOverlap(plan, "in-place chain");
    }

    [Fact]
    public void RandomDags_NoTwoLiveValuesOverlap_OffsetsAligned()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int t = 0; t < 60; t++)
        {
            var dag = RandomDag.Create(rng, rng.Next(1, 60));
            var plan = dag.Graph.Plan;
            CheckNoOverlap(plan, $"seed {seed}, dag {t}");
            Assert.True(plan.PeakActivationBytes <= plan.NaiveActivationBytes, $"seed {seed}, dag {t}");
            Assert.Equal(0, plan.PeakActivationBytes % ExecutionPlan.Alignment);
        }
    }

    /// <summary>Every pair of arena values alive at the same node must occupy disjoint bytes, except an in-place output and its input.</summary>
    private static void CheckNoOverlap(ExecutionPlan plan, string context)
    {
        var arena = plan.Graph.Values.Where(v => plan[v].Storage == Storage.Arena).ToList();
        foreach (var v in plan.Graph.Values)
        {
            var p = plan[v];
            Assert.True(p.Storage == Storage.Arena ? v.Kind == ValueKind.NodeOutput : p.Offset == -1, $"{context}: {v.Name} {p}");
            if (p.Storage != Storage.Arena) continue;
            Assert.True(p.Offset % ExecutionPlan.Alignment == 0 && p.Offset >= 0, $"{context}: {v.Name} at {p.Offset} is not aligned");
            Assert.True(p.Offset + p.Bytes <= plan.PeakActivationBytes, $"{context}: {v.Name} ends past the arena");
            Assert.Equal(v.Producer!.Index, p.FirstUse);
            int lastReader = plan.Graph.Nodes.Where(n => n.Inputs.Contains(v)).Select(n => n.Index).DefaultIfEmpty(p.FirstUse).Max();
            Assert.Equal(lastReader, p.LastUse);
        }
        foreach (var a in arena)
        foreach (var b in arena)
        {
            if (a.Id >= b.Id) continue;
            var (pa, pb) = (plan[a], plan[b]);
            bool liveTogether = pa.FirstUse <= pb.LastUse && pb.FirstUse <= pa.LastUse;
            bool shareBytes = pa.Offset < pb.Offset + pb.Bytes && pb.Offset < pa.Offset + pa.Bytes;
            if (!liveTogether || !shareBytes) continue;
            // Allowed only for an elementwise op writing over its dying first input.
            bool inPlace = pb.InPlaceOf == a && pb.Offset == pa.Offset && pa.LastUse == pb.FirstUse && b.Producer!.Inputs[0] == a && b.Producer.Inputs.Count(i => i == a) == 1;
            Assert.True(inPlace, $"{context}: {a.Name} ({pa}) and {b.Name} ({pb}) overlap while both live\n{plan}");
        }
    }
}

/// <summary>Planning alone (nothing allocated), on a realistic size: a VGG-like feature extractor on a 256x256 image.</summary>
public class ExecutionPlanSizeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void VggLikeNet_ArenaFarBelowNaive()
    {
        var b = new GraphBuilder();
        var x = b.Input("image", new Shape(1, 3, 256, 256));
        int c = 3, layer = 0;
        foreach (int width in new[] { 64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512 })
        {
            if (width == 0) { x = b.MaxPool2d(x, 2); continue; }
            var w = b.Input($"w{layer}", new Shape(width, c, 3, 3)); // weights as inputs: their data is irrelevant here
            x = b.LeakyRelu(b.Conv2d(x, w, null, new Conv2dOptions(padding: 1)), 0.1f);
            c = width;
            layer++;
        }
        b.Output("features", x);
        var plan = b.Build().Plan;
        output.WriteLine($"arena {plan.PeakActivationBytes} B, naive {plan.NaiveActivationBytes} B, ratio {plan.NaiveActivationBytes / (double)plan.PeakActivationBytes:F2}");
        // Largest two live activations: conv [1, 64, 256, 256] twice (leaky relu runs in place) = 32 MiB.
        Assert.Equal(2L * 64 * 256 * 256 * 4, plan.PeakActivationBytes);
        Assert.True(plan.PeakActivationBytes * 4 < plan.NaiveActivationBytes);
    }
}
