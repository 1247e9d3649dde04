using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Conv;
using Xunit;

namespace GpuAnomaly.Tests.GraphEngine;

/// <summary>
/// The `cpu` device's budget check counts what a run takes beyond the plan's buffers: a padded-input convolution
/// copies its whole input and output into per-thread scratch, and constant weights are packed a second time.
/// </summary>
public sealed class PlanBudgetTests
{
    private static (Graph Graph, Conv2dParams P) PaddedConv(int channels, int size)
    {
        var rng = KernelLab.NewRng(out _);
        var g = new GraphBuilder();
        var x = g.Input("x", new Shape(1, channels, size, size));
        var w = g.Constant("conv.weight", KernelLab.RandomFloats(rng, channels * channels * 9, 0.1f), new Shape(channels, channels, 3, 3));
        g.Output("y", g.Conv2d(x, w, null, new Conv2dOptions(padding: 1), "conv"));
        var p = new Conv2dParams { N = 1, CIn = channels, H = size, W = size, COut = channels, KH = 3, KW = 3, StrideH = 1, StrideW = 1,
            PadTop = 1, PadLeft = 1, PadBottom = 1, PadRight = 1, DilH = 1, DilW = 1, Groups = 1 };
        return (g.Build(), p);
    }

    [Fact]
    public void CpuScratch_OfAPaddedInputConv_CoversItsInputAndOutputCopies()
    {
        var (graph, p) = PaddedConv(32, 61);
        Conv2dCpu.DisableDirect = true; // the direct path takes this shape on AVX-512 machines: see the next test
        long scratch;
        try
        {
            Assert.True(Conv2dCpu.UsesPaddedInput(p));
            using var cpu = new CpuDevice();
            scratch = cpu.WorkspaceBytes(graph.Plan);
        }
        finally { Conv2dCpu.DisableDirect = false; }
        long copies = 2L * 32 * 63 * 63 * sizeof(float); // padded input and wide output, one image each
        Assert.True(scratch >= copies + Conv2dCpu.PackedWeightBytes(p), $"scratch {scratch} < {copies} + packed weights");
        Assert.True(scratch < 4 * copies, $"scratch {scratch} is far above the {copies} bytes of copies");
    }

    [Fact]
    public void CpuScratch_OfADirectConv_CoversItsPaddedInput()
    {
        var (graph, p) = PaddedConv(32, 61);
        if (!Conv2dCpu.UsesDirect(p)) return; // AVX-512 only; the test above covers the other machines
        using var cpu = new CpuDevice();
        long scratch = cpu.WorkspaceBytes(graph.Plan);
        long copy = 32L * 63 * 63 * sizeof(float); // the padded input; outputs are stored straight into y
        Assert.True(scratch >= copy + Conv2dCpu.PackedWeightBytes(p), $"scratch {scratch} < {copy} + packed weights");
        Assert.True(scratch < 3 * copy, $"scratch {scratch} is far above the {copy} bytes of the copy");
    }

    [Fact]
    public void CpuScratch_OfAWinogradConv_CoversItsRearrangedInput()
    {
        var (graph, p) = PaddedConv(64, 61);
        if (!Conv2dCpu.UsesWinograd(p)) return; // AVX-512 only
        using var cpu = new CpuDevice();
        long scratch = cpu.WorkspaceBytes(graph.Plan);
        // The rearranged input (about one padded plane per channel), plus per thread the transformed tiles of a block.
        long copy = 64L * 63 * 63 * sizeof(float), tiles = 16L * 64 * 32 * sizeof(float) * Environment.ProcessorCount;
        Assert.True(scratch >= copy + tiles + Conv2dCpu.PackedWeightBytes(p), $"scratch {scratch} < {copy} + {tiles} + packed weights");
        Assert.True(scratch < 3 * (copy + tiles) + Conv2dCpu.PackedWeightBytes(p), $"scratch {scratch} is far above the {copy + tiles} bytes of copies");
    }

    [Fact]
    public void Budget_BetweenThePlanAndPlanPlusScratch_IsRefused()
    {
        var (graph, _) = PaddedConv(32, 125);
        using var cpu = new CpuDevice();
        long plan = graph.Plan.TotalDeviceBytes, total = plan + cpu.WorkspaceBytes(graph.Plan);
        cpu.MemoryFraction = (plan + total) / 2.0 / cpu.MemoryBytes;
        Assert.InRange(cpu.PlanBudgetBytes, plan + 1, total - 1);
        var e = Assert.Throws<PlanTooLargeException>(() => new Executor(graph, cpu));
        Assert.Equal(total, e.Bytes);
        Assert.Contains("[1, 32, 125, 125]", e.Message);

        cpu.MemoryFraction = Math.Min(1.0, 2.0 * total / cpu.MemoryBytes);
        using var exec = new Executor(graph, cpu); // fits once the scratch does
    }
}
