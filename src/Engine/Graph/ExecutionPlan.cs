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
/// inclusive; inputs and constants from -1 (before the first node).
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
/// have buffers of their own.
/// </summary>
public sealed class ExecutionPlan
{
    /// <summary>Byte alignment of arena offsets (covers CUDA's 256-byte allocation granularity and every vector width).</summary>
    public const int Alignment = 256;

    public ExecutionPlan(Graph graph)
    {
        Graph = graph;
        var values = graph.Values;
        var outputs = new HashSet<Value>(graph.Outputs.Select(o => o.Value));

        // Liveness: the builder's order is topological, so one pass finds each value's last reader.
        var last = new int[values.Count];
        for (int i = 0; i < values.Count; i++) last[i] = values[i].Producer?.Index ?? -1;
        foreach (var n in graph.Nodes)
            foreach (var v in n.Inputs)
                last[v.Id] = Math.Max(last[v.Id], n.Index);

        // Arena values grouped into buffers; an in-place node output joins its input's buffer.
        var bufferOf = new ArenaBuffer?[values.Count];
        var buffers = new List<ArenaBuffer>();
        var inPlaceOf = new Value?[values.Count];
        foreach (var n in graph.Nodes)
        {
            var v = n.Output;
            if (outputs.Contains(v)) continue;
            var x = n.Inputs.Count > 0 ? n.Inputs[0] : null;
            // In place only when input 0 dies here and is not also another input of this node (the op
            // may read its other inputs at any index).
            if (n.Op.CanRunInPlace && x is not null && bufferOf[x.Id] is { } shared && last[x.Id] == n.Index
                && x.Bytes == v.Bytes && n.Inputs.Count(i => i == x) == 1)
            {
                shared.Last = last[v.Id];
                bufferOf[v.Id] = shared;
                inPlaceOf[v.Id] = x;
                continue;
            }
            var b = new ArenaBuffer(AlignUp(v.Bytes), n.Index, last[v.Id]);
            buffers.Add(b);
            bufferOf[v.Id] = b;
            NaiveActivationBytes += AlignUp(v.Bytes);
        }
        // In-place values are counted by the naive sum too: without reuse each would have its own buffer.
        NaiveActivationBytes += values.Where(v => inPlaceOf[v.Id] is not null).Sum(v => AlignUp(v.Bytes));

        PeakActivationBytes = AssignOffsets(buffers);

        var placements = new Placement[values.Count];
        foreach (var v in values)
        {
            int first = v.Producer?.Index ?? -1;
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
    /// <summary>Execution order (the graph's node order, which is topological).</summary>
    public IReadOnlyList<Node> Order => Graph.Nodes;
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
    private static long AssignOffsets(List<ArenaBuffer> buffers)
    {
        var order = buffers.OrderByDescending(b => b.Size).ThenBy(b => b.First).ToList();
        var placed = new List<ArenaBuffer>();
        long arena = 0;
        foreach (var b in order)
        {
            // Already placed buffers alive at the same time as b, by offset; b goes into the smallest gap that holds it.
            var live = placed.Where(p => p.First <= b.Last && b.First <= p.Last).OrderBy(p => p.Offset);
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
    }
}
