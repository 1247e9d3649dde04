using System.Diagnostics;

namespace GpuAnomaly.Engine.Benchmarks;

/// <summary>One plan node's share of a run: its median time over the profiled runs, and its rate.</summary>
/// <param name="Bytes">Bytes the node reads and writes once each (its inputs, constants included, and its output).</param>
public sealed record NodeProfile(int Index, string Name, string Op, string Output, double MedianMs, double Flops, double Bytes)
{
    public double GFlops => Flops > 0 && MedianMs > 0 ? Flops / (MedianMs * 1e6) : 0;
    public double GBps => MedianMs > 0 ? Bytes / (MedianMs * 1e6) : 0;
}

/// <summary>
/// Time per plan node (`gpuanomaly bench --profile`): runs the executor <c>repeat</c> times with a wait after every
/// node (<see cref="Executor.RunProfiled"/>) after <c>warmup</c> plain runs, and keeps each node's median. The
/// nodes' medians need not add up to the median of whole runs; <see cref="TotalMs"/> is the median of the profiled
/// runs' sums.
/// </summary>
public sealed class PlanProfile
{
    private PlanProfile(IReadOnlyList<NodeProfile> nodes, double totalMs, int repeat)
    {
        Nodes = nodes;
        TotalMs = totalMs;
        Repeat = repeat;
    }

    public IReadOnlyList<NodeProfile> Nodes { get; }
    public double TotalMs { get; }
    public int Repeat { get; }

    /// <summary>Profiles <paramref name="executor"/>, whose inputs must be set.</summary>
    public static PlanProfile Measure(Executor executor, int repeat, int warmup = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(repeat, 1);
        var nodes = executor.Graph.Nodes;
        for (int i = 0; i < warmup; i++) executor.Run();
        var samples = new double[nodes.Count, repeat];
        var totals = new double[repeat];
        var one = new double[nodes.Count];
        for (int r = 0; r < repeat; r++)
        {
            Array.Clear(one);
            executor.RunProfiled(one);
            for (int i = 0; i < one.Length; i++)
            {
                samples[i, r] = one[i];
                totals[r] += one[i];
            }
        }
        var rows = new NodeProfile[nodes.Count];
        var column = new double[repeat];
        for (int i = 0; i < nodes.Count; i++)
        {
            for (int r = 0; r < repeat; r++) column[r] = samples[i, r];
            var n = nodes[i];
            var shapes = n.Inputs.Select(v => v.Shape).ToArray();
            double bytes = n.Inputs.Sum(v => (double)v.Bytes) + n.Output.Bytes;
            rows[i] = new NodeProfile(i, n.Name, n.Op.ToString(), n.Output.Shape.ToString(), Median(column), n.Op.Flops(shapes, n.Output.Shape), bytes);
        }
        return new PlanProfile(rows, Median(totals), repeat);
    }

    /// <summary>The nodes grouped by op kind: count, summed median ms, summed FLOPs and bytes, largest first.</summary>
    public IEnumerable<(string Kind, int Count, double Ms, double Flops, double Bytes)> ByKind(Graph graph) =>
        Nodes.GroupBy(n => graph.Nodes[n.Index].Op.Kind)
            .Select(g => (g.Key, g.Count(), g.Sum(n => n.MedianMs), g.Sum(n => n.Flops), g.Sum(n => n.Bytes)))
            .OrderByDescending(g => g.Item3);

    private static double Median(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        int m = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[m] : 0.5 * (sorted[m - 1] + sorted[m]);
    }
}
