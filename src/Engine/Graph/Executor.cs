namespace GpuAnomaly.Engine;

/// <summary>A graph input given with a wrong name or size; names the input and the expected shape.</summary>
public sealed class GraphInputException(string input, string message) : GpuAnomalyException(message)
{
    public string Input { get; } = input;
}

/// <summary>
/// Runs a planned graph on one device. The constructor uploads the constants and allocates
/// the activation arena and the input and output buffers; runs then allocate no device memory.
/// Not thread-safe: one run at a time; a second thread that calls SetInput, Run or RunToHost while one runs gets a
/// <see cref="ConcurrentUseException"/> (the runs share the planned buffers).
/// </summary>
public sealed class Executor : IDisposable
{
    private readonly List<Tensor> _owned = [];
    private readonly Tensor[] _tensors;
    private readonly Tensor[][] _nodeInputs;
    private readonly Dictionary<string, Tensor> _inputs = [];
    private readonly Dictionary<string, Tensor> _outputs = [];
    private readonly HashSet<string> _inputsSet = [];
    private readonly ExclusiveRun _exclusive = new("executor");
    private readonly StageRun[] _stages;
    private bool _disposed;

    /// <summary>Plans <paramref name="graph"/> for <paramref name="device"/>: concurrent branches where it runs them (<see cref="Device.Lanes"/>).</summary>
    public Executor(Graph graph, Device device) : this(graph.PlanFor(device?.Lanes ?? 1), device!) { }

    public Executor(ExecutionPlan plan, Device device)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(device);
        Plan = plan;
        Device = device;
        var graph = plan.Graph;
        RefuseOverBudget(plan, device);
        _tensors = new Tensor[graph.Values.Count];
        try
        {
            Tensor? arena = null;
            if (plan.PeakActivationBytes > 0)
                // Rows of Alignment bytes: the arena is a multiple of Alignment and may exceed 2^31 floats.
                arena = Own(device.Allocate(new Shape(checked((int)(plan.PeakActivationBytes / ExecutionPlan.Alignment)), ExecutionPlan.Alignment / 4),
                    DType.F32, "the activation arena"));
            foreach (var v in graph.Values)
            {
                var p = plan.Placements[v.Id];
                _tensors[v.Id] = p.Storage switch
                {
                    Storage.Arena => arena!.Slice(p.Offset, v.Shape, DType.F32),
                    Storage.Constant => UploadConstant(v),
                    _ => Own(device.Allocate(v.Shape, DType.F32, $"{p.Storage.ToString().ToLowerInvariant()} '{v.Name}'")),
                };
            }
        }
        catch
        {
            Dispose();
            throw;
        }
        _nodeInputs = graph.Nodes.Select(n => n.Inputs.Select(v => _tensors[v.Id]).ToArray()).ToArray();
        _stages = plan.Schedule.Stages.Select(s => new StageRun(this, s)).ToArray();
        foreach (var v in graph.Inputs) _inputs[v.Name] = _tensors[v.Id];
        foreach (var (name, v) in graph.Outputs) _outputs[name] = _tensors[v.Id];
    }

    /// <summary>The plan's bytes (and the device's scratch for it) are known before anything runs: a plan over the device's budget never starts allocating.</summary>
    private static void RefuseOverBudget(ExecutionPlan plan, Device device)
    {
        long bytes = plan.TotalDeviceBytes + device.WorkspaceBytes(plan), budget = device.PlanBudgetBytes;
        if (bytes <= budget) return;
        string inputs = string.Join(", ", plan.Graph.Inputs.Select(v => $"'{v.Name}' {v.Shape}"));
        string note = device is CpuDevice cpu
            ? $"{cpu.MemoryFraction:0.##} of {DeviceOutOfMemoryException.FormatBytes(cpu.MemoryBytes).Split(" (")[0]} of memory; {CpuDevice.MemoryFractionVariable} sets the fraction"
            : $"the memory of {device.Name}";
        throw new PlanTooLargeException(device.Name, bytes, budget, inputs, note);
    }

    public ExecutionPlan Plan { get; }
    public Graph Graph => Plan.Graph;
    public Device Device { get; }

    /// <summary>The output tensors by name, valid (and overwritten by each run) until the executor is disposed.</summary>
    public IReadOnlyDictionary<string, Tensor> Outputs => _outputs;

    /// <summary>The device tensor of one output.</summary>
    public Tensor Output(string name) =>
        _outputs.TryGetValue(name, out var t) ? t
            : throw new ArgumentException($"unknown output '{name}' (the graph's outputs: {string.Join(", ", _outputs.Keys)})");

    /// <summary>Copies one input's data to the device; the value is kept for later runs.</summary>
    public void SetInput(string name, ReadOnlySpan<float> data)
    {
        using var run = _exclusive.Enter();
        CheckAlive();
        if (!_inputs.TryGetValue(name, out var t))
            throw new GraphInputException(name, $"unknown input '{name}' (the graph's inputs: {InputList()})");
        if (data.Length != t.Elements)
            throw new GraphInputException(name, $"input '{name}' expects {t.Elements} values (shape {t.Shape}), got {data.Length}");
        t.CopyFrom(data);
        _inputsSet.Add(name);
    }

    /// <summary>Runs every node on the inputs set so far and waits for the device.</summary>
    public void Run()
    {
        using var run = _exclusive.Enter();
        CheckAlive();
        if (_inputsSet.Count != _inputs.Count)
        {
            var missing = Graph.Inputs.First(v => !_inputsSet.Contains(v.Name));
            throw new GraphInputException(missing.Name, $"input '{missing.Name}' (shape {missing.Shape}) was not given");
        }
        foreach (var stage in _stages)
        {
            if (stage.Lanes.Length == 1) RunNodes(stage.Lanes[0]);
            else Device.RunLanes(stage.Lanes.Length, stage);
        }
        Device.Synchronize();
    }

    private void RunNodes(Node[] nodes)
    {
        foreach (var n in nodes) n.Op.Run(Device, _nodeInputs[n.Index], _tensors[n.Output.Id]);
    }

    /// <summary>A stage's lanes, run by <see cref="Device.RunLanes"/> (one object per stage: a run allocates nothing).</summary>
    private sealed class StageRun(Executor executor, Stage stage) : GpuAnomaly.Kernels.Cpu.ILoopBody
    {
        public Node[][] Lanes { get; } = stage.Lanes.Select(l => l.ToArray()).ToArray();
        public void Run(int lane) => executor.RunNodes(Lanes[lane]);
    }

    /// <summary>
    /// Runs once like <see cref="Run()"/>, waiting for the device after every node, and adds each node's wall time in
    /// milliseconds to <paramref name="nodeMs"/> (one entry per node, indexed by <see cref="Node.Index"/>). The waits serialize a GPU's
    /// queue, so a profile's total may exceed a plain run's time there; on cpu the ops are synchronous already.
    /// Concurrent lanes run one after the other here (each node alone, its op parallel inside), so a profile times
    /// each node by itself, not the overlap that <see cref="Run()"/> gets.
    /// </summary>
    public void RunProfiled(Span<double> nodeMs)
    {
        using var run = _exclusive.Enter();
        CheckAlive();
        var nodes = Plan.Order;
        if (nodeMs.Length != nodes.Count) throw new ArgumentException($"{nodeMs.Length} timings for {nodes.Count} nodes", nameof(nodeMs));
        if (_inputsSet.Count != _inputs.Count)
        {
            var missing = Graph.Inputs.First(v => !_inputsSet.Contains(v.Name));
            throw new GraphInputException(missing.Name, $"input '{missing.Name}' (shape {missing.Shape}) was not given");
        }
        Device.Synchronize();
        long t = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int i = 0; i < nodes.Count; i++)
        {
            nodes[i].Op.Run(Device, _nodeInputs[nodes[i].Index], _tensors[nodes[i].Output.Id]);
            Device.Synchronize();
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            nodeMs[nodes[i].Index] += (now - t) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
            t = now;
        }
    }

    /// <summary>Sets every input (all must be given), then runs; the results stay on the device (<see cref="Outputs"/>).</summary>
    public void Run(IReadOnlyDictionary<string, float[]> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        // Held across SetInput and Run: another thread's inputs must not land between ours and the run.
        using var run = _exclusive.Enter();
        foreach (var name in inputs.Keys)
            if (!_inputs.ContainsKey(name))
                throw new GraphInputException(name, $"unknown input '{name}' (the graph's inputs: {InputList()})");
        foreach (var v in Graph.Inputs)
            if (!inputs.ContainsKey(v.Name))
                throw new GraphInputException(v.Name, $"input '{v.Name}' (shape {v.Shape}) was not given");
        foreach (var (name, data) in inputs) SetInput(name, data);
        Run();
    }

    public void Run(params (string Name, float[] Data)[] inputs) =>
        Run(inputs.ToDictionary(i => i.Name, i => i.Data));

    /// <summary>Runs and downloads every output into new host arrays.</summary>
    public Dictionary<string, float[]> RunToHost(IReadOnlyDictionary<string, float[]> inputs)
    {
        // Held until the outputs are downloaded: a run started by another thread would overwrite them.
        using var run = _exclusive.Enter();
        Run(inputs);
        return _outputs.ToDictionary(o => o.Key, o => o.Value.ToArray());
    }

    public Dictionary<string, float[]> RunToHost(params (string Name, float[] Data)[] inputs) =>
        RunToHost(inputs.ToDictionary(i => i.Name, i => i.Data));

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
    }

    private Tensor UploadConstant(Value v)
    {
        // Marked constant: devices may then cache what they derive from weights (packed conv weights on cpu).
        if (v.DeviceData is { } t)
        {
            if (ReferenceEquals(t.Device, Device)) return t.MarkConstant();
            return Own(Device.FromHost(t.ToArray(), v.Shape, $"constant '{v.Name}'").MarkConstant());
        }
        if (v.HostBytes is { } bytes)
        {
            var packed = Own(Device.Allocate(v.Shape, v.DType, $"constant '{v.Name}'"));
            Device.CopyFromHost(bytes.Span, packed);
            return packed.MarkConstant();
        }
        return Own(Device.FromHost(v.HostData, v.Shape, $"constant '{v.Name}'").MarkConstant());
    }

    private Tensor Own(Tensor t)
    {
        _owned.Add(t);
        return t;
    }

    private string InputList() => string.Join(", ", Graph.Inputs.Select(v => $"{v.Name} {v.Shape}"));

    private void CheckAlive() => ObjectDisposedException.ThrowIf(_disposed, this);
}
