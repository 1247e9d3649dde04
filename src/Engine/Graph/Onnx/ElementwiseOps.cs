using System.Numerics;

namespace GpuAnomaly.Engine;

/// <summary>Add / Sub / Mul / Div / Pow / Max / Min / Mod / PRelu with numpy broadcasting.</summary>
public sealed class BroadcastBinaryOp(BinaryKind kind) : HostKernelOp
{
    public BinaryKind Function { get; } = kind;
    public override string Kind => "onnx_" + Function.ToString().ToLowerInvariant();
    // Element j of the output reads element j of input 0 when input 0 is not broadcast (the planner checks the sizes).
    public override bool CanRunInPlace => true;

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 2, 2);
        return ShapeOf(NdIndex.Broadcast(inputs[0].Dims, inputs[1].Dims)
                       ?? throw new ArgumentException($"shapes {inputs[0]} and {inputs[1]} do not broadcast"));
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) =>
        NdLayout.Binary(Function, x(0), dims[0], x(1), dims[1], y, yDims);

    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var y = output.Shape.Dims;
        if ((int)Function >= Kernels.Elementwise.BroadcastGpu.BinaryCodes || y.Length > Kernels.Elementwise.BroadcastLayout.MaxRank) return false;
        var layout = Kernels.Elementwise.BroadcastLayout.Create(y, NdIndex.BroadcastStrides(inputs[0].Shape.Dims, y), NdIndex.BroadcastStrides(inputs[1].Shape.Dims, y));
        device.BroadcastKernels.Binary((int)Function, layout, checked((int)output.Elements), inputs[0].View<float>(), inputs[1].View<float>(), output.View<float>());
        return true;
    }

    public override string ToString() => Kind;
}

/// <summary>Unary ONNX functions (Sigmoid, Tanh, Exp, Erf, Clip, ...); Alpha / Beta are the function's attributes.</summary>
public sealed class UnaryMathOp(UnaryKind kind, float alpha = 0, float beta = 0) : HostKernelOp
{
    public UnaryKind Function { get; } = kind;
    public float Alpha { get; } = alpha;
    public float Beta { get; } = beta;
    public override string Kind => "onnx_" + Function.ToString().ToLowerInvariant();
    public override bool CanRunInPlace => true;

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        return inputs[0];
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims)
    {
        var src = x(0);
        T a = T.CreateTruncating(Alpha), b = T.CreateTruncating(Beta);
        for (int i = 0; i < y.Length; i++) y[i] = NdMath.Unary(Function, src[i], a, b);
    }

    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        if (!Kernels.Elementwise.BroadcastGpu.SupportsUnary((int)Function)) return false;
        device.BroadcastKernels.Unary((int)Function, Alpha, Beta, inputs[0].View<float>(), output.View<float>());
        return true;
    }

    public override string ToString() => Alpha == 0 && Beta == 0 ? Kind : $"{Kind}({Alpha}, {Beta})";
}

/// <summary>
/// Reshape / Flatten / Squeeze / Unsqueeze / Identity: the same elements under a new shape. In place when the planner
/// lets it (then the copy is skipped), else one copy.
/// </summary>
public sealed class ReshapeCopyOp(Shape shape) : HostKernelOp
{
    public Shape Target { get; } = shape;
    public override string Kind => "reshape";
    public override bool CanRunInPlace => true;

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        if (inputs[0].Elements != Target.Elements) throw new ArgumentException($"cannot reshape {inputs[0]} to {Target}");
        return Target;
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        if (inputs[0].Memory == output.Memory && inputs[0].ByteOffset == output.ByteOffset) return;
        base.Run(device, inputs, output);
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) => x(0).CopyTo(y);

    // A copy is the identity function's kernel.
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        device.BroadcastKernels.Unary(0, 0, 0, inputs[0].View<float>(), output.View<float>());
        return true;
    }

    public override string ToString() => $"reshape({Target})";
}

/// <summary>Expand: a copy broadcast to a larger shape.</summary>
public sealed partial class ExpandOp(Shape shape) : HostKernelOp
{
    public Shape Target { get; } = shape;
    public override string Kind => "expand";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        return ShapeOf(NdIndex.Broadcast(inputs[0].Dims, Target.Dims) ?? throw new ArgumentException($"{inputs[0]} does not broadcast to {Target}"));
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) => NdLayout.Expand(x(0), dims[0], y, yDims);

    public override string ToString() => $"expand({Target})";
}
