namespace GpuAnomaly.Engine;

/// <summary>
/// One step of an <see cref="ExecutionSchedule"/>: its lanes run at the same time, each on one thread, each its nodes
/// in order; the stage ends when every lane has. A stage of one lane is an ordinary sequence of nodes, whose ops
/// spread their own work over the device's threads.
/// </summary>
public sealed record Stage(IReadOnlyList<IReadOnlyList<Node>> Lanes)
{
    public bool IsConcurrent => Lanes.Count > 1;
}

/// <summary>
/// The order a plan runs a graph's nodes in, and which of them run at the same time. Sequential: the graph's own
/// (topological) order, one node after the other, each op parallel inside. Concurrent (a cpu device with several
/// threads): independent branches of the graph run side by side, one per thread, each op then on its own thread.
/// That pays where the ops are too small to split well: the Uninformed Students networks at batch 1 run twelve
/// independent chains of 16-32-channel convolutions: splitting each layer over two cores took 8.1 ms, two lanes
/// 6.0 ms (`GpuAnomaly.Bench lanes`, docs/PERFORMANCE.md); a chain kept on one core also keeps its activations in that
/// core's cache (an op reading what the other core just wrote measured up to 10x slower: 0.6 -> 6 us).
/// <para>
/// How: the graph is cut into chains (a node joins its producer's chain when it is that node's only reader and the
/// producer its only node input); a chain's level is one more than the highest level among the chains it reads;
/// the chains of one level are independent and form a stage. A stage's chains are dealt to the lanes longest first
/// (by <see cref="Cost"/>), each to the least loaded lane; the stage runs concurrently only when that is balanced
/// (the busiest lane within <see cref="MaxImbalance"/> of an even share) and its nodes are small (on average under
/// <see cref="MaxConcurrentNodeCost"/>). Otherwise its chains run one after the other with parallel ops: a big branch
/// beside a small one, like a ResNet block's shortcut, gains nothing from a lane of its own and would lose the threads
/// inside its ops, and big ops split well over the threads by themselves, while lanes hold every lane's activations
/// at once (the width-128 Uninformed Students at 64x64, about 3 GFLOP per convolution: 716 ms sequential, 730 ms in
/// two lanes, with 2.6 times the activation memory).
/// </para>
/// </summary>
public sealed class ExecutionSchedule
{
    /// <summary>A concurrent stage's busiest lane may take at most this much more than an even share of its cost.</summary>
    public const double MaxImbalance = 1.15;

    /// <summary>
    /// A stage runs concurrently only when its nodes average less than this <see cref="Cost"/>: 1 GFLOP. The default
    /// Uninformed Students model averages 40 MFLOP per convolution at batch 1 and 320 at batch 8 (both faster in lanes:
    /// 8.1 -> 6.0 ms and 50.4 -> 45.3 ms on 2 threads), its width-128 variant 3 GFLOP at 64x64 (no faster: 716 vs 730 ms).
    /// </summary>
    public const double MaxConcurrentNodeCost = 1e9;

    private ExecutionSchedule(IReadOnlyList<Stage> stages, int lanes)
    {
        Stages = stages;
        Lanes = lanes;
        Order = stages.SelectMany(s => s.Lanes.SelectMany(l => l)).ToArray();
    }

    /// <summary>The stages in the order they run.</summary>
    public IReadOnlyList<Stage> Stages { get; }
    /// <summary>Every node, stage by stage and within a stage lane by lane: a topological order.</summary>
    public IReadOnlyList<Node> Order { get; }
    /// <summary>The most lanes a stage may have (1: sequential).</summary>
    public int Lanes { get; }
    public bool IsConcurrent => Stages.Any(s => s.IsConcurrent);

    /// <summary>One line: "sequential", or the lanes and what runs concurrently.</summary>
    public override string ToString()
    {
        var concurrent = Stages.Where(s => s.IsConcurrent).ToArray();
        if (concurrent.Length == 0) return "sequential (one node at a time, each op parallel inside)";
        int nodes = concurrent.Sum(s => s.Lanes.Sum(l => l.Count));
        return $"{Lanes} lanes: {concurrent.Length} concurrent stage(s) of {string.Join(", ", concurrent.Select(s => s.Lanes.Count))} lanes " +
               $"({nodes} of {Order.Count} nodes), the other {Order.Count - nodes} nodes one at a time";
    }

    /// <summary>The graph's order, one stage per node.</summary>
    public static ExecutionSchedule Sequential(Graph graph) =>
        new(graph.Nodes.Select(n => new Stage([new[] { n }])).ToArray(), 1);

    /// <summary>
    /// Independent branches side by side on up to <paramref name="lanes"/> threads where that is balanced (see the
    /// class); <paramref name="lanes"/> 1 gives <see cref="Sequential"/>. <paramref name="maxImbalance"/> replaces
    /// <see cref="MaxImbalance"/> (infinity: every stage of several chains runs concurrently).
    /// </summary>
    public static ExecutionSchedule Concurrent(Graph graph, int lanes, double maxImbalance = MaxImbalance)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentOutOfRangeException.ThrowIfLessThan(lanes, 1);
        if (lanes == 1) return Sequential(graph);
        var nodes = graph.Nodes;

        // Each node's distinct producers, and the readers of each node's output.
        var producers = nodes.Select(n => n.Inputs.Select(v => v.Producer).OfType<Node>().Distinct().ToArray()).ToArray();
        var readers = new int[nodes.Count];
        foreach (var ps in producers)
            foreach (var p in ps) readers[p.Index]++;

        // Chains, in the order of their first node.
        var chainOf = new int[nodes.Count];
        var chains = new List<List<Node>>();
        foreach (var n in nodes)
        {
            var ps = producers[n.Index];
            if (ps.Length == 1 && readers[ps[0].Index] == 1 && chains[chainOf[ps[0].Index]][^1] == ps[0])
            {
                chainOf[n.Index] = chainOf[ps[0].Index];
                chains[chainOf[n.Index]].Add(n);
                continue;
            }
            chainOf[n.Index] = chains.Count;
            chains.Add([n]);
        }

        // Levels: chains are numbered in topological order (by first node), so one pass suffices.
        var level = new int[chains.Count];
        for (int c = 0; c < chains.Count; c++)
            foreach (var p in producers[chains[c][0].Index])
                level[c] = Math.Max(level[c], level[chainOf[p.Index]] + 1);

        var stages = new List<Stage>();
        foreach (var group in Enumerable.Range(0, chains.Count).GroupBy(c => level[c]).OrderBy(g => g.Key))
        {
            var members = group.Select(c => chains[c]).ToList();
            var dealt = members.Count > 1 ? Deal(members, lanes, maxImbalance) : null;
            if (dealt is not null) stages.Add(new Stage(dealt));
            else foreach (var n in members.SelectMany(c => c).OrderBy(n => n.Index)) stages.Add(new Stage([new[] { n }]));
        }
        return new ExecutionSchedule(stages, lanes);
    }

    /// <summary>
    /// Longest chain first, each to the least loaded lane; null when the busiest lane would exceed
    /// <paramref name="maxImbalance"/> times an even share, or the nodes average <see cref="MaxConcurrentNodeCost"/> or more.
    /// </summary>
    private static IReadOnlyList<IReadOnlyList<Node>>? Deal(List<List<Node>> chains, int lanes, double maxImbalance)
    {
        var cost = chains.Select(c => c.Sum(Cost)).ToArray();
        double total = cost.Sum();
        int used = Math.Min(lanes, chains.Count);
        var load = new double[used];
        var assigned = Enumerable.Range(0, used).Select(_ => new List<List<Node>>()).ToArray();
        foreach (int c in Enumerable.Range(0, chains.Count).OrderByDescending(c => cost[c]).ThenBy(c => chains[c][0].Index))
        {
            int lane = Array.IndexOf(load, load.Min());
            load[lane] += cost[c];
            assigned[lane].Add(chains[c]);
        }
        if (!(load.Max() <= maxImbalance * total / used) || total / chains.Sum(c => c.Count) >= MaxConcurrentNodeCost) return null;
        return assigned.Select(l => (IReadOnlyList<Node>)l.OrderBy(c => c[0].Index).SelectMany(c => c).ToArray()).ToArray();
    }

    /// <summary>
    /// A node's estimated cost for balancing lanes: its flops plus 8 per byte it reads and writes (a core does about
    /// 100-200 GFLOP/s on a convolution and moves 10-25 GB/s through a memory-bound op).
    /// </summary>
    public static double Cost(Node n) =>
        n.Op.Flops(n.Inputs.Select(v => v.Shape).ToArray(), n.Output.Shape) + 8.0 * (n.Inputs.Sum(v => (double)v.Bytes) + n.Output.Bytes);
}
