using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Elementwise;
using GpuAnomaly.Kernels.Pool;

namespace GpuAnomaly.Tests.GraphEngine;

/// <summary>
/// A test-only op in plain host code (cpu tensors): out[j] = tanh(bias + sum_i c_i * in_i[k_i(j)]).
/// The gathering variant reads in_i at scattered indices, so a planner that lets the output share
/// memory with a live input corrupts the result; the elementwise variant reads in_0[j] only and
/// may run in place.
/// </summary>
public sealed class MixOp : Op
{
    private readonly float[] _coef;
    private readonly float _bias;
    private readonly Shape? _shape;

    /// <param name="shape">Output shape of the gathering variant; null for the elementwise variant (shape of input 0).</param>
    public MixOp(Random rng, int inputs, Shape? shape)
    {
        _coef = KernelLab.RandomFloats(rng, inputs);
        _bias = KernelLab.RandomFloats(rng, 1)[0];
        _shape = shape;
    }

    public override string Kind => _shape is null ? "mix_inplace" : "mix";
    public override bool CanRunInPlace => _shape is null;

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, _coef.Length, _coef.Length);
        return _shape ?? inputs[0];
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        // Input spans are re-read element by element (no copy), as a real kernel would.
        var y = output.Span<float>();
        for (int j = 0; j < y.Length; j++)
        {
            float acc = _bias;
            for (int i = 0; i < inputs.Count; i++)
            {
                var x = inputs[i].Span<float>();
                acc += _coef[i] * x[Index(j, i, x.Length)];
            }
            y[j] = MathF.Tanh(acc);
        }
    }

    /// <summary>The same computation on host arrays.</summary>
    public float[] Compute(IReadOnlyList<float[]> inputs, long outElements)
    {
        var y = new float[outElements];
        for (int j = 0; j < y.Length; j++)
        {
            float acc = _bias;
            for (int i = 0; i < inputs.Count; i++)
                acc += _coef[i] * inputs[i][Index(j, i, inputs[i].Length)];
            y[j] = MathF.Tanh(acc);
        }
        return y;
    }

    private int Index(int j, int i, int length) =>
        _shape is null && i == 0 ? j : (int)(((long)j * 7 + i * 13 + (length - 1 - j % length)) % length);
}

/// <summary>The `cpu` device with a count of its allocations (its memory belongs to the inner device).</summary>
public sealed class CountingDevice : Device
{
    private readonly CpuDevice _inner = new();
    public int Allocations { get; private set; }
    public long AllocatedBytes { get; private set; }

    public override string Name => "counting-cpu";
    public override string Description => "cpu with an allocation counter";
    public override long MemoryBytes => _inner.MemoryBytes;
    public override int Multiprocessors => 1;
    public override int WarpSize => 1;

    public override DeviceMemory AllocateMemory(long bytes, string? what = null)
    {
        Allocations++;
        AllocatedBytes += bytes;
        return _inner.AllocateMemory(bytes, what);
    }

    public override void CopyFromHost(ReadOnlySpan<byte> src, Tensor dst) => _inner.CopyFromHost(src, dst);
    public override void CopyToHost(Tensor src, Span<byte> dst) => _inner.CopyToHost(src, dst);
    public override void Synchronize() { }
    protected override void RunConv2d(in Conv2dParams p, Tensor x, Tensor w, Tensor? bias, Tensor y) => throw new NotSupportedException();
    protected override void RunPool2d(in Pool2dParams p, Tensor x, Tensor y) => throw new NotSupportedException();
    protected override void RunLeakyRelu(Tensor x, float slope, Tensor y) => throw new NotSupportedException();
    protected override void RunRelu(Tensor x, Tensor y) => throw new NotSupportedException();
    protected override void RunAdd(Tensor a, Tensor b, Tensor y) => throw new NotSupportedException();
    public override void Dispose() => _inner.Dispose();
}

/// <summary>A random DAG of <see cref="MixOp"/>s plus its host evaluation.</summary>
public sealed class RandomDag
{
    public required GpuAnomaly.Engine.Graph Graph { get; init; }
    public required Dictionary<string, float[]> Inputs { get; init; }
    public required Func<Dictionary<string, float[]>, Dictionary<string, float[]>> Evaluate { get; init; }

    public static RandomDag Create(Random rng, int nodes, int maxElements = 2000)
    {
        var b = new GraphBuilder();
        var pool = new List<Value>();
        var inputs = new Dictionary<string, float[]>();
        var constants = new Dictionary<Value, float[]>();
        Shape RandomShape() => rng.Next(2) == 0 ? new Shape(rng.Next(1, maxElements)) : new Shape(rng.Next(1, 40), rng.Next(1, maxElements / 40));
        for (int i = 0, n = rng.Next(1, 4); i < n; i++)
        {
            var s = RandomShape();
            pool.Add(b.Input($"x{i}", s));
            inputs[$"x{i}"] = KernelLab.RandomFloats(rng, s.Elements);
        }
        for (int i = 0, n = rng.Next(0, 3); i < n; i++)
        {
            var s = RandomShape();
            var data = KernelLab.RandomFloats(rng, s.Elements);
            var c = b.Constant($"c{i}", data, s);
            pool.Add(c);
            constants[c] = data;
        }
        var ops = new List<(Value Out, MixOp Op, Value[] In)>();
        for (int k = 0; k < nodes; k++)
        {
            // Mostly recent values, sometimes old ones: long and short lifetimes.
            var ins = new Value[rng.Next(1, 4)];
            for (int i = 0; i < ins.Length; i++)
                ins[i] = pool[rng.Next(3) == 0 ? rng.Next(pool.Count) : Math.Max(0, pool.Count - 1 - rng.Next(3))];
            var op = new MixOp(rng, ins.Length, rng.Next(3) == 0 ? null : RandomShape());
            var v = b.Apply(op, ins);
            pool.Add(v);
            ops.Add((v, op, ins));
        }
        var outputs = new List<(string, Value)> { ("out", ops[^1].Out) };
        for (int i = 0, n = rng.Next(0, 3); i < n; i++)
        {
            var v = ops[rng.Next(ops.Count)].Out;
            if (outputs.All(o => o.Item2 != v)) outputs.Add(($"out{i}", v));
        }
        foreach (var (name, v) in outputs) b.Output(name, v);
        var graph = b.Build();

        Dictionary<string, float[]> Evaluate(Dictionary<string, float[]> feed)
        {
            var env = new Dictionary<Value, float[]>(constants);
            foreach (var v in graph.Inputs) env[v] = feed[v.Name];
            foreach (var (o, op, ins) in ops) env[o] = op.Compute(ins.Select(v => env[v]).ToArray(), o.Shape.Elements);
            return outputs.ToDictionary(x => x.Item1, x => env[x.Item2]);
        }
        return new RandomDag { Graph = graph, Inputs = inputs, Evaluate = Evaluate };
    }
}
