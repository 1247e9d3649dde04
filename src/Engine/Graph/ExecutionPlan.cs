namespace GpuAnomaly.Engine;

/// <summary>Where a value's memory comes from at run time.</summary>
public enum Storage
{
    /// <summary>Its own buffer, filled by the caller before each run.</summary>
    Input,
    /// <summary>Its own buffer, uploaded once.</summary>
    Constant,
    /// <summary>Its own buffer, so that no later node overwrites a result.</summary>
    Output,
    /// <summary>A range of the shared activation arena, reused by values whose lifetimes do not overlap.</summary>
    Arena,
}

/// <summary>
/// The plan for one value. Node outputs live from the node that defines them
/// (<see cref="FirstUse"/>) to the last node that reads them (<see cref="LastUse"/>), both
/// inclusive, as positions in <see cref="ExecutionPlan.Order"/>; inputs and constants from -1 (before the first node).
/// </summary>
public sealed record Placement(Storage Storage, long Offset, long Bytes, int FirstUse, int LastUse, Value? InPlaceOf)
{
    public override string ToString() => Storage switch
    {
        Storage.Arena => $"arena @ {Offset}, {Bytes} B, live {FirstUse}..{LastUse}" + (InPlaceOf is null ? "" : $", in place of {InPlaceOf.Name}"),
        _ => $"{Storage.ToString().ToLowerInvariant()} buffer, {Bytes} B",
    };
}

/// <summary>
/// Execution order plus memory plan of a <see cref="Graph"/>. Intermediate values share one
/// arena: each gets an <see cref="Alignment"/>-aligned offset, assigned greedily by size
/// (largest first, each into the best-fitting gap among the already placed values whose
/// lifetimes overlap its own), the heuristic TFLite's arena planner uses. An elementwise op
/// writes over its first input when that input dies at the op. Inputs, constants and outputs
/// have buffers of their own. With a concurrent <see cref="ExecutionSchedule"/>, the lanes of a stage run at the
/// same time in any interleaving: a value one lane touches (writes or reads) never shares memory with one another
/// lane of that stage touches, and an op writes over its input only when no other lane of its stage reads it.
/// </summary>
public sealed class ExecutionPlan
{
    /// <summary>Byte alignment of arena offsets (covers CUDA's 256-byte allocation granularity and every vector width).</summary>
    public const int Alignment = 256;

    public ExecutionPlan(Graph graph) : this(graph, ExecutionSchedule.Sequential(graph)) { }

    public ExecutionPlan(Graph graph, ExecutionSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        Graph = graph;
        Schedule = schedule;
        var values = graph.Values;
        var outputs = new HashSet<Value>(graph.Outputs.Select(o => o.Value));
        var order = schedule.Order;
        if (order.Count != graph.Nodes.Count || order.Distinct().Count() != order.Count || order.Any(n => n.Index >= graph.Nodes.Count || graph.Nodes[n.Index] != n))
            throw new ArgumentException("the schedule does not order this graph's nodes", nameof(schedule));

        // Position of each node in the order, and its lane: a number per lane of a concurrent stage, -1 elsewhere.
        var position = new int[order.Count];
        for (int i = 0; i < order.Count; i++) position[order[i].Index] = i;
        var laneOf = new int[order.Count];
        var stageOfLane = new List<int>();
        Array.Fill(laneOf, -1);
        for (int s = 0; s < schedule.Stages.Count; s++)
        {
            if (!schedule.Stages[s].IsConcurrent) continue;
            foreach (var lane in schedule.Stages[s].Lanes)
            {
                foreach (var n in lane) laneOf[n.Index] = stageOfLane.Count;
                stageOfLane.Add(s);
            }
        }
        foreach (var n in order)
            foreach (var v in n.Inputs)
                if (v.Producer is { } p && position[p.Index] >= position[n.Index])
                    throw new ArgumentException($"the schedule runs '{n.Name}' before '{p.Name}', whose output it reads", nameof(schedule));

        // Liveness in positions, and the lanes that touch each value.
        var last = new int[values.Count];
        var lanes = new HashSet<int>?[values.Count];
        for (int i = 0; i < values.Count; i++)
        {
            last[i] = values[i].Producer is { } p ? position[p.Index] : -1;
            if (values[i].Producer is { } q && laneOf[q.Index] >= 0) (lanes[i] ??= []).Add(laneOf[q.Index]);
        }
        foreach (var n in order)
            foreach (var v in n.Inputs)
            {
                last[v.Id] = Math.Max(last[v.Id], position[n.Index]);
                if (laneOf[n.Index] >= 0) (lanes[v.Id] ??= []).Add(laneOf[n.Index]);
            }

        // Arena values grouped into buffers; an in-place node output joins its input's buffer.
        var bufferOf = new ArenaBuffer?[values.Count];
        var buffers = new List<ArenaBuffer>();
        var inPlaceOf = new Value?[values.Count];
        foreach (var n in order)
        {
            var v = n.Output;
            if (outputs.Contains(v)) continue;
            var x = n.Inputs.Count > 0 ? n.Inputs[0] : null;
            // In place only when input 0 dies here and is not also another input of this node (the op
            // may read its other inputs at any index), nor read by another lane of this node's stage.
            if (n.Op.CanRunInPlace && x is not null && bufferOf[x.Id] is { } shared && last[x.Id] == position[n.Index]
                && x.Bytes == v.Bytes && n.Inputs.Count(i => i == x) == 1
                && (laneOf[n.Index] < 0 || lanes[x.Id]!.All(l => l == laneOf[n.Index] || stageOfLane[l] != stageOfLane[laneOf[n.Index]])))
            {
                shared.Last = last[v.Id];
                shared.AddLanes(lanes[v.Id]);
                bufferOf[v.Id] = shared;
                inPlaceOf[v.Id] = x;
                continue;
            }
            var b = new ArenaBuffer(AlignUp(v.Bytes), position[n.Index], last[v.Id]);
            b.AddLanes(lanes[v.Id]);
            buffers.Add(b);
            bufferOf[v.Id] = b;
            NaiveActivationBytes += AlignUp(v.Bytes);
        }
        // In-place values are counted by the naive sum too: without reuse each would have its own buffer.
        NaiveActivationBytes += values.Where(v => inPlaceOf[v.Id] is not null).Sum(v => AlignUp(v.Bytes));

        PeakActivationBytes = AssignOffsets(buffers, stageOfLane);

        var placements = new Placement[values.Count];
        foreach (var v in values)
        {
            int first = v.Producer is { } p ? position[p.Index] : -1;
            placements[v.Id] = v.Kind switch
            {
                ValueKind.Input => new Placement(Storage.Input, -1, v.Bytes, first, last[v.Id], null),
                ValueKind.Constant => new Placement(Storage.Constant, -1, v.Bytes, first, last[v.Id], null),
                _ when outputs.Contains(v) => new Placement(Storage.Output, -1, v.Bytes, first, last[v.Id], null),
                _ => new Placement(Storage.Arena, bufferOf[v.Id]!.Offset, v.Bytes, first, last[v.Id], inPlaceOf[v.Id]),
            };
        }
        Placements = placements;
        OutputBytes = outputs.Where(v => v.Kind == ValueKind.NodeOutput).Sum(v => v.Bytes);
        InputBytes = graph.Inputs.Sum(v => v.Bytes);
    }

    public Graph Graph { get; }
    /// <summary>Which nodes run when, and which at the same time.</summary>
    public ExecutionSchedule Schedule { get; }
    /// <summary>Execution order (topological; the graph's node order for a sequential schedule).</summary>
    public IReadOnlyList<Node> Order => Schedule.Order;
    /// <summary>One placement per value, indexed by <see cref="Value.Id"/>.</summary>
    public IReadOnlyList<Placement> Placements { get; }
    /// <summary>The arena's size: the peak memory of intermediate activations with reuse.</summary>
    public long PeakActivationBytes { get; }
    /// <summary>What the intermediates would take with a buffer each (aligned sizes summed).</summary>
    public long NaiveActivationBytes { get; }
    public long InputBytes { get; }
    public long OutputBytes { get; }
    /// <summary>Everything an executor allocates on its device (constants given as tensors on that device excepted).</summary>
    public long TotalDeviceBytes => PeakActivationBytes + InputBytes + OutputBytes + Graph.ConstantBytes;

    public Placement this[Value v] => Placements[v.Id];

    public static long AlignUp(long bytes) => (bytes + Alignment - 1) / Alignment * Alignment;

    public override string ToString() => Graph.Describe();

    /// <summary>Greedy by size, best fit; returns the arena size.</summary>
    private static long AssignOffsets(List<ArenaBuffer> buffers, List<int> stageOfLane)
    {
        var order = buffers.OrderByDescending(b => b.Size).ThenBy(b => b.First).ToList();
        var placed = new List<ArenaBuffer>();
        long arena = 0;
        foreach (var b in order)
        {
            // Already placed buffers alive at the same time as b, by offset; b goes into the smallest gap that holds it.
            var live = placed.Where(p => p.First <= b.Last && b.First <= p.Last || p.Concurrent(b, stageOfLane)).OrderBy(p => p.Offset);
            long end = 0, best = -1, bestGap = long.MaxValue;
            foreach (var p in live)
            {
                long gap = p.Offset - end;
                if (gap >= b.Size && gap < bestGap) { best = end; bestGap = gap; }
                end = Math.Max(end, p.Offset + p.Size);
            }
            b.Offset = best >= 0 ? best : end;
            placed.Add(b);
            arena = Math.Max(arena, b.Offset + b.Size);
        }
        return arena;
    }

    private sealed class ArenaBuffer(long size, int first, int last)
    {
        public long Size { get; } = size;
        public int First { get; } = first;
        public int Last { get; set; } = last;
        public long Offset { get; set; }
        /// <summary>The lanes of concurrent stages that write or read this buffer.</summary>
        private List<int>? _lanes;

        public void AddLanes(IEnumerable<int>? lanes)
        {
            if (lanes is null) return;
            _lanes ??= [];
            foreach (int l in lanes)
                if (!_lanes.Contains(l)) _lanes.Add(l);
        }

        /// <summary>Whether two lanes of one stage touch this buffer and <paramref name="other"/>: they may then be live at the same time.</summary>
        public bool Concurrent(ArenaBuffer other, List<int> stageOfLane)
        {
            if (_lanes is null || other._lanes is null) return false;
            foreach (int a in _lanes)
                foreach (int b in other._lanes)
                    if (a != b && stageOfLane[a] == stageOfLane[b]) return true;
            return false;
        }
    }
}
