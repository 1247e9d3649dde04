using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Pool;

namespace GpuAnomaly.Engine;

/// <summary>
/// nn.Conv2d's attributes. Padding may be asymmetric: <c>new Conv2dOptions(padding: 1)</c> is
/// PyTorch's padding=1, <c>new Conv2dOptions { PadTop = 1, PadLeft = 1 }</c> pads only top/left.
/// The activation is fused into the kernel's epilogue (after the bias).
/// </summary>
public sealed record Conv2dOptions
{
    public Conv2dOptions(int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        Activation act = Activation.None, float slope = 0.01f)
    {
        StrideH = StrideW = stride;
        PadTop = PadLeft = PadBottom = PadRight = padding;
        DilH = DilW = dilation;
        Groups = groups;
        Act = act;
        Slope = slope;
    }

    public int StrideH { get; init; }
    public int StrideW { get; init; }
    public int PadTop { get; init; }
    public int PadLeft { get; init; }
    public int PadBottom { get; init; }
    public int PadRight { get; init; }
    public int DilH { get; init; }
    public int DilW { get; init; }
    public int Groups { get; init; }
    public Activation Act { get; init; }
    public float Slope { get; init; }

    public override string ToString() =>
        $"stride={StrideH}x{StrideW} pad=({PadTop},{PadLeft},{PadBottom},{PadRight}) dil={DilH}x{DilW} groups={Groups}" +
        (Act == Activation.None ? "" : $" act={Act}" + (Act == Activation.LeakyRelu ? $"({Slope})" : ""));
}

/// <summary>Conv2d: inputs x [N, CIn, H, W], weight [COut, CIn/groups, KH, KW], optional bias [COut].</summary>
public sealed class Conv2dOp(Conv2dOptions options) : Op
{
    public Conv2dOptions Options { get; } = options;
    public override string Kind => "conv2d";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 2, 3);
        var p = Params(inputs[0], inputs[1], inputs.Count == 3 ? inputs[2] : null);
        return new Shape(p.N, p.COut, p.OutH, p.OutW);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var bias = inputs.Count == 3 ? inputs[2] : null;
        device.Conv2d(Params(inputs[0].Shape, inputs[1].Shape, bias?.Shape), inputs[0], inputs[1], bias, output);
    }

    public override double Flops(IReadOnlyList<Shape> inputs, Shape output) =>
        Params(inputs[0], inputs[1], inputs.Count == 3 ? inputs[2] : null).Flops;

    /// <summary>The kernel parameters for these shapes; ArgumentException naming the shapes when they do not fit.</summary>
    public Conv2dParams Params(Shape x, Shape w, Shape? bias)
    {
        if (x.Rank != 4) throw new ArgumentException($"input {x} is not NCHW (rank 4)");
        if (w.Rank != 4) throw new ArgumentException($"weight {w} is not [COut, CIn/groups, KH, KW] (rank 4)");
        var o = Options;
        if (o.Groups < 1 || x[1] % o.Groups != 0 || w[0] % o.Groups != 0)
            throw new ArgumentException($"groups {o.Groups} must divide the input channels of {x} and the output channels of weight {w}");
        if (x[1] / o.Groups != w[1])
            throw new ArgumentException($"input {x} has {x[1]} channels but weight {w} expects {w[1] * o.Groups} (groups {o.Groups})");
        if (bias is not null && (bias.Rank != 1 || bias[0] != w[0]))
            throw new ArgumentException($"bias {bias} does not match weight {w} (expected [{w[0]}])");
        var p = new Conv2dParams
        {
            N = x[0], CIn = x[1], H = x[2], W = x[3], COut = w[0], KH = w[2], KW = w[3],
            StrideH = o.StrideH, StrideW = o.StrideW,
            PadTop = o.PadTop, PadLeft = o.PadLeft, PadBottom = o.PadBottom, PadRight = o.PadRight,
            DilH = o.DilH, DilW = o.DilW, Groups = o.Groups, HasBias = bias is null ? 0 : 1,
            Act = o.Act, Slope = o.Slope,
        };
        try { p.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"input {x}, weight {w}: {e.Message}", e); }
        return p;
    }

    public override string ToString() => $"conv2d({Options})";
}

/// <summary>MaxPool2d / AvgPool2d over NCHW, PyTorch semantics (ceil_mode = False).</summary>
public sealed class Pool2dOp(PoolKind kind, int kernel, int? stride = null, int padding = 0, int dilation = 1,
    bool countIncludePad = true) : Op
{
    public PoolKind PoolKind { get; } = kind;
    public int Kernel { get; } = kernel;
    public int Stride { get; } = stride ?? kernel;
    public int Padding { get; } = padding;
    public int Dilation { get; } = dilation;
    public bool CountIncludePad { get; } = countIncludePad;
    public override string Kind => PoolKind == PoolKind.Max ? "max_pool2d" : "avg_pool2d";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var p = Params(inputs[0]);
        return new Shape(p.N, p.C, p.OutH, p.OutW);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output) =>
        device.Pool2d(Params(inputs[0].Shape), inputs[0], output);

    public Pool2dParams Params(Shape x)
    {
        if (x.Rank != 4) throw new ArgumentException($"input {x} is not NCHW (rank 4)");
        var p = Pool2dParams.Create(PoolKind, x[0], x[1], x[2], x[3], Kernel, Stride, Padding, Dilation, CountIncludePad);
        try { p.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"input {x}: {e.Message}", e); }
        return p;
    }

    public override string ToString() =>
        $"{Kind}(k={Kernel} stride={Stride} pad={Padding}" +
        (PoolKind == PoolKind.Max ? $" dil={Dilation})" : $" countIncludePad={CountIncludePad})");
}

/// <summary>Ops whose output has the shape of their input(s) and may overwrite input 0.</summary>
public abstract class ElementwiseOp : Op
{
    public override bool CanRunInPlace => true;

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, Arity, Arity);
        for (int i = 1; i < inputs.Count; i++)
            if (inputs[i] != inputs[0])
                throw new ArgumentException($"{Kind} needs equal shapes (no broadcasting), got {string.Join(" and ", inputs)}");
        return inputs[0];
    }

    protected abstract int Arity { get; }
}

public sealed class LeakyReluOp(float slope) : ElementwiseOp
{
    public float Slope { get; } = slope;
    public override string Kind => "leaky_relu";
    protected override int Arity => 1;
    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output) => device.LeakyRelu(inputs[0], Slope, output);
    public override string ToString() => $"leaky_relu({Slope})";
}

public sealed class ReluOp : ElementwiseOp
{
    public override string Kind => "relu";
    protected override int Arity => 1;
    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output) => device.Relu(inputs[0], output);
}

public sealed class AddOp : ElementwiseOp
{
    public override string Kind => "add";
    protected override int Arity => 2;
    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output) => device.Add(inputs[0], inputs[1], output);
}
