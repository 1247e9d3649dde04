using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Pool;

namespace GpuAnomaly.Engine;

/// <summary>
/// Builds a <see cref="Graph"/> in code: declare inputs and constants (weights), apply ops,
/// name the outputs, then <see cref="Build"/>. Shapes are inferred as each node is added, so a
/// mismatch throws <see cref="ShapeMismatchException"/> at the line that causes it. Every
/// input, constant and node has a unique name; node names default to the op kind plus a counter
/// ("conv2d_1", "conv2d_2", ...).
/// </summary>
public sealed class GraphBuilder
{
    private readonly List<Value> _values = [];
    private readonly List<Node> _nodes = [];
    private readonly List<Value> _inputs = [];
    private readonly List<Value> _constants = [];
    private readonly List<KeyValuePair<string, Value>> _outputs = [];
    private readonly HashSet<string> _names = [];
    private readonly Dictionary<string, int> _kindCounters = [];
    private bool _built;

    public Value Input(string name, Shape shape)
    {
        var v = NewValue(name, shape, ValueKind.Input);
        _inputs.Add(v);
        return v;
    }

    /// <summary>A weight held on the host; the executor uploads it once.</summary>
    public Value Constant(string name, float[] data, Shape shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length != shape.Elements)
            throw new ArgumentException($"constant '{name}': {data.Length} values do not fill shape {shape}");
        var v = NewValue(name, shape, ValueKind.Constant, hostData: data);
        _constants.Add(v);
        return v;
    }

    /// <summary>
    /// A packed ternary weight (<see cref="DType.Ternary2"/>): uint32 words [shape[0], Words(K)] as
    /// <see cref="Kernels.Ternary.TernaryPacking"/> lays them out; the codes are checked here.
    /// </summary>
    public Value TernaryConstant(string name, uint[] packed, Shape shape)
    {
        ArgumentNullException.ThrowIfNull(packed);
        if (shape.Rank < 1 || shape.Elements < 1)
            throw new ArgumentException($"constant '{name}': ternary shape {shape} needs rows and columns");
        long k = shape.Elements / shape[0];
        if (k > int.MaxValue) throw new ArgumentException($"constant '{name}': ternary rows of {k} weights are too long");
        if (Kernels.Ternary.TernaryPacking.Validate(packed, shape[0], (int)k) is { } problem)
            throw new ArgumentException($"constant '{name}': {problem}");
        var bytes = new byte[packed.Length * sizeof(uint)];
        Buffer.BlockCopy(packed, 0, bytes, 0, bytes.Length);
        var v = NewValue(name, shape, ValueKind.Constant, hostBytes: bytes, dtype: DType.Ternary2);
        _constants.Add(v);
        return v;
    }

    /// <summary>
    /// A weight already in a tensor: an executor on the tensor's device uses it as is (the
    /// caller keeps ownership and must keep it alive); an executor elsewhere copies it.
    /// </summary>
    public Value Constant(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.DType != DType.F32)
            throw new ArgumentException($"constant '{name}': tensor is {tensor.DType}; graphs hold F32 values");
        var v = NewValue(name, tensor.Shape, ValueKind.Constant, deviceData: tensor);
        _constants.Add(v);
        return v;
    }

    public Value Conv2d(Value x, Value weight, Value? bias, Conv2dOptions options, string? name = null) =>
        options is null ? throw new ArgumentNullException(nameof(options)) : bias is null ? Apply(name, new Conv2dOp(options), x, weight) : Apply(name, new Conv2dOp(options), x, weight, bias);

    public Value MaxPool2d(Value x, int kernel, int? stride = null, int padding = 0, int dilation = 1, string? name = null) =>
        Apply(name, new Pool2dOp(PoolKind.Max, kernel, stride, padding, dilation), x);

    public Value AvgPool2d(Value x, int kernel, int? stride = null, int padding = 0, bool countIncludePad = true, string? name = null) =>
        Apply(name, new Pool2dOp(PoolKind.Avg, kernel, stride, padding, 1, countIncludePad), x);

    public Value LeakyRelu(Value x, float slope = 0.01f, string? name = null) => Apply(name, new LeakyReluOp(slope), x);

    public Value Relu(Value x, string? name = null) => Apply(name, new ReluOp(), x);

    public Value Add(Value a, Value b, string? name = null) => Apply(name, new AddOp(), a, b);

    /// <summary>
    /// Uninformed Students score map [N, H, W] of one scale from the teacher's descriptors
    /// [N, D, H, W], its per-channel statistics mu, sigma [D] and 1 to 4 students' outputs
    /// [N, D, H, W], with the e / v statistics of anomaly-free images (see <see cref="StudentTeacherScoreOp"/>).
    /// </summary>
    public Value StudentTeacherScore(Value teacher, IReadOnlyList<Value> students, Value mu, Value sigma,
        float eMean = 0f, float eStd = 1f, float vMean = 0f, float vStd = 1f, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(students);
        return Apply(name, new StudentTeacherScoreOp(eMean, eStd, vMean, vStd), [teacher, mu, sigma, .. students]);
    }

    /// <summary>Applies any op (built-in or user-defined) under a default name.</summary>
    public Value Apply(Op op, params Value[] inputs) => Apply(null, op, inputs);

    /// <summary>Applies any op; infers and checks the output shape now.</summary>
    public Value Apply(string? name, Op op, params Value[] inputs)
    {
        ArgumentNullException.ThrowIfNull(op);
        CheckOpen();
        name ??= DefaultName(op.Kind);
        CheckName(name);
        foreach (var v in inputs)
        {
            ArgumentNullException.ThrowIfNull(v, nameof(inputs));
            if (!ReferenceEquals(v.Owner, this))
                throw new ArgumentException($"node '{name}': input '{v.Name}' belongs to another graph builder");
        }
        Shape shape;
        try
        {
            shape = op.InferShape(inputs.Select(v => v.Shape).ToArray());
        }
        catch (ArgumentException e)
        {
            throw new ShapeMismatchException(name, $"{op}: {e.Message}");
        }
        var node = new Node(_nodes.Count, name, op, (Value[])inputs.Clone());
        node.Output = NewValue(name, shape, ValueKind.NodeOutput, producer: node);
        _nodes.Add(node);
        return node.Output;
    }

    /// <summary>Marks a value as a graph output; the executor gives it a buffer no later node overwrites.</summary>
    public void Output(string name, Value v)
    {
        ArgumentNullException.ThrowIfNull(v);
        CheckOpen();
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("an output needs a name");
        if (!ReferenceEquals(v.Owner, this)) throw new ArgumentException($"output '{name}': value '{v.Name}' belongs to another graph builder");
        if (_outputs.Any(o => o.Key == name)) throw new ArgumentException($"output '{name}' is declared twice");
        _outputs.Add(new(name, v));
    }

    public Graph Build()
    {
        CheckOpen();
        if (_outputs.Count == 0) throw new InvalidOperationException("the graph has no outputs (call Output before Build)");
        _built = true;
        return new Graph(_values, _nodes, _inputs, _constants, _outputs);
    }

    private Value NewValue(string name, Shape shape, ValueKind kind, Node? producer = null,
        float[]? hostData = null, Tensor? deviceData = null, ReadOnlyMemory<byte>? hostBytes = null, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(shape);
        CheckOpen();
        CheckName(name);
        _names.Add(name);
        var v = new Value(this, _values.Count, name, shape, kind, producer) { HostData = hostData, DeviceData = deviceData, HostBytes = hostBytes, DType = dtype };
        _values.Add(v);
        return v;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("names must not be empty");
        if (_names.Contains(name)) throw new ArgumentException($"the name '{name}' is already used in this graph");
    }

    private string DefaultName(string kind)
    {
        int k = _kindCounters.GetValueOrDefault(kind);
        string name;
        do name = $"{kind}_{++k}"; while (_names.Contains(name));
        _kindCounters[kind] = k;
        return name;
    }

    private void CheckOpen()
    {
        if (_built) throw new InvalidOperationException("this graph builder has already built its graph");
    }
}
