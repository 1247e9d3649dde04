namespace GpuAnomaly.Engine;

/// <summary>ReduceSum / Mean / Max / Min / Prod / ... over a set of axes, keepdims or not.</summary>
public sealed partial class ReduceOp(ReduceKind kind, int[] axes, bool keepDims) : HostKernelOp
{
    public ReduceKind Function { get; } = kind;
    public IReadOnlyList<int> Axes { get; } = axes;
    public bool KeepDims { get; } = keepDims;
    public override string Kind => "reduce_" + Function.ToString().ToLowerInvariant();

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (Axes.Any(a => a < 0 || a >= x.Rank)) throw new ArgumentException($"axes [{string.Join(", ", Axes)}] out of range for {x}");
        var d = new List<int>();
        for (int i = 0; i < x.Rank; i++)
            if (!Axes.Contains(i)) d.Add(x[i]);
            else if (KeepDims) d.Add(1);
        return ShapeOf(d);
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims)
    {
        var reduced = new bool[dims[0].Length];
        foreach (int a in Axes) reduced[a] = true;
        NdReduce.Reduce(Function, x(0), dims[0], reduced, y);
    }

    public override string ToString() => $"{Kind}([{string.Join(", ", Axes)}], keepdims={KeepDims})";
}

/// <summary>Softmax or LogSoftmax along one axis (opset 13 semantics).</summary>
public sealed partial class SoftmaxAxisOp(int axis, bool log) : HostKernelOp
{
    public int Axis { get; } = axis;
    public bool Log { get; } = log;
    public override string Kind => Log ? "log_softmax" : "softmax";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        if (Axis >= Math.Max(inputs[0].Rank, 1)) throw new ArgumentException($"axis {Axis} is out of range for {inputs[0]}");
        return inputs[0];
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) => NdReduce.Softmax(x(0), dims[0], Axis, Log, y);

    public override string ToString() => $"{Kind}(axis={Axis})";
}

/// <summary>numpy matmul of two rank >= 2 operands with broadcast batch axes (the importer reshapes 1-D operands).</summary>
public sealed partial class MatMulOp : HostKernelOp
{
    public override string Kind => "matmul";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 2, 2);
        Shape a = inputs[0], b = inputs[1];
        if (a.Rank < 2 || b.Rank < 2 || a[-1] != b[-2]) throw new ArgumentException($"matmul of {a} and {b}");
        var batch = NdIndex.Broadcast(a.Dims[..^2], b.Dims[..^2]) ?? throw new ArgumentException($"batch axes of {a} and {b} do not broadcast");
        return new Shape([.. batch, a[-2], b[-1]]);
    }

    public override double Flops(IReadOnlyList<Shape> inputs, Shape output) => 2.0 * output.Elements * inputs[0][-1];

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) =>
        NdReduce.MatMul(x(0), dims[0], x(1), dims[1], y, yDims);
}
