using System.Text;

namespace GpuAnomaly.Engine;

/// <summary>
/// An immutable graph: inputs, constants, nodes in topological order and named outputs, every
/// shape known. Plan it (<see cref="Plan"/>) and run it with an <see cref="Executor"/>.
/// </summary>
public sealed class Graph
{
    private readonly Lazy<ExecutionPlan> _plan;

    internal Graph(IReadOnlyList<Value> values, IReadOnlyList<Node> nodes, IReadOnlyList<Value> inputs,
        IReadOnlyList<Value> constants, IReadOnlyList<KeyValuePair<string, Value>> outputs)
    {
        Values = values.ToArray();
        Nodes = nodes.ToArray();
        Inputs = inputs.ToArray();
        Constants = constants.ToArray();
        Outputs = outputs.ToArray();
        _plan = new(() => new ExecutionPlan(this));
    }

    /// <summary>Every value, indexed by <see cref="Value.Id"/>.</summary>
    public IReadOnlyList<Value> Values { get; }
    /// <summary>In execution order; <see cref="Node.Index"/> is the position.</summary>
    public IReadOnlyList<Node> Nodes { get; }
    public IReadOnlyList<Value> Inputs { get; }
    public IReadOnlyList<Value> Constants { get; }
    public IReadOnlyList<KeyValuePair<string, Value>> Outputs { get; }

    /// <summary>The buffer plan of the sequential schedule, computed once on first use.</summary>
    public ExecutionPlan Plan => _plan.Value;

    private readonly Dictionary<int, ExecutionPlan> _concurrentPlans = [];

    /// <summary>
    /// The plan for a device that runs up to <paramref name="lanes"/> independent branches at once
    /// (<see cref="ExecutionSchedule.Concurrent"/>; <see cref="Plan"/> when that schedule is sequential), computed once per lane count.
    /// </summary>
    public ExecutionPlan PlanFor(int lanes)
    {
        if (lanes <= 1) return Plan;
        lock (_concurrentPlans)
        {
            if (_concurrentPlans.TryGetValue(lanes, out var plan)) return plan;
            var schedule = ExecutionSchedule.Concurrent(this, lanes);
            plan = schedule.IsConcurrent ? new ExecutionPlan(this, schedule) : Plan;
            _concurrentPlans[lanes] = plan;
            return plan;
        }
    }

    public long ConstantBytes => Constants.Sum(v => v.Bytes);

    /// <summary>A listing: inputs, constants, then one line per node (op, input shapes -> output shape, buffer) and the outputs.</summary>
    public string Describe()
    {
        var plan = Plan;
        var sb = new StringBuilder();
        sb.AppendLine($"graph: {Inputs.Count} inputs, {Constants.Count} constants ({DeviceOutOfMemoryException.FormatBytes(ConstantBytes)}), " +
                      $"{Nodes.Count} nodes, {Outputs.Count} outputs");
        foreach (var v in Inputs) sb.AppendLine($"  input    {v.Name} {v.Shape}");
        foreach (var v in Constants) sb.AppendLine($"  constant {v.Name} {v.Shape}");
        foreach (var n in Nodes)
        {
            string ins = string.Join(", ", n.Inputs.Select(v => $"{v.Name} {v.Shape}"));
            sb.AppendLine($"  {n.Name} = {n.Op}({ins}) -> {n.Output.Shape}  [{plan.Placements[n.Output.Id]}]");
        }
        foreach (var (name, v) in Outputs) sb.AppendLine($"  output   {name} = {v.Name} {v.Shape}");
        sb.Append($"arena {DeviceOutOfMemoryException.FormatBytes(plan.PeakActivationBytes)} " +
                  $"(without reuse {DeviceOutOfMemoryException.FormatBytes(plan.NaiveActivationBytes)})");
        return sb.ToString();
    }

    public override string ToString() => Describe();
}
