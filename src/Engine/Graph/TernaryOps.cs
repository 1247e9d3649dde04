using GpuAnomaly.Kernels.Ternary;

namespace GpuAnomaly.Engine;

/// <summary>
/// Conv2d with a packed ternary weight (METHODS.md §3): inputs x [N, CIn, H, W], weight
/// <see cref="DType.Ternary2"/> [COut, CIn/groups, KH, KW], scale [1] (per tensor) or [COut] (per
/// output channel), optional bias [COut]; y = scale * conv(x, W_t) + bias, then the activation.
/// </summary>
public sealed class TernaryConv2dOp(Conv2dOptions options, TernaryActivations activations) : Op
{
    private readonly Conv2dOp _conv = new(options);

    public Conv2dOptions Options => _conv.Options;
    public TernaryActivations Activations { get; } = activations;
    public override string Kind => "ternary_conv2d";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 3, 4);
        var p = Params(inputs[0], inputs[1], inputs[2], inputs.Count == 4 ? inputs[3] : null);
        return new Shape(p.Conv.N, p.Conv.COut, p.Conv.OutH, p.Conv.OutW);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var bias = inputs.Count == 4 ? inputs[3] : null;
        device.TernaryConv2d(Params(inputs[0].Shape, inputs[1].Shape, inputs[2].Shape, bias?.Shape), inputs[0], inputs[1], inputs[2], bias, output);
    }

    public override double Flops(IReadOnlyList<Shape> inputs, Shape output) =>
        _conv.Params(inputs[0], inputs[1], inputs.Count == 4 ? inputs[3] : null).Flops;

    public TernaryConv2dParams Params(Shape x, Shape w, Shape scale, Shape? bias)
    {
        var conv = _conv.Params(x, w, bias);
        return TernaryConv2dParams.Create(conv, TernaryLinearOp.ScaleMode(scale, conv.COut, w), Activations);
    }

    public override string ToString() => $"ternary_conv2d({Options} {Activations})";
}

/// <summary>
/// nn.Linear with a packed ternary weight: x [..., K] (leading dimensions are tokens), weight
/// <see cref="DType.Ternary2"/> [N, K], scale [1] or [N], optional bias [N]; y [..., N].
/// </summary>
public sealed class TernaryLinearOp(TernaryActivations activations) : Op
{
    public TernaryActivations Activations { get; } = activations;
    public override string Kind => "ternary_linear";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 3, 4);
        Params(inputs[0], inputs[1], inputs[2], inputs.Count == 4 ? inputs[3] : null);
        var x = inputs[0];
        var dims = new int[x.Rank];
        for (int i = 0; i < x.Rank - 1; i++) dims[i] = x[i];
        dims[^1] = inputs[1][0];
        return new Shape(dims);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var bias = inputs.Count == 4 ? inputs[3] : null;
        device.TernaryLinear(Params(inputs[0].Shape, inputs[1].Shape, inputs[2].Shape, bias?.Shape), inputs[0], inputs[1], inputs[2], bias, output);
    }

    public override double Flops(IReadOnlyList<Shape> inputs, Shape output) => 2.0 * output.Elements * inputs[1][1];

    public TernaryLinearParams Params(Shape x, Shape w, Shape scale, Shape? bias)
    {
        if (x.Rank < 1) throw new ArgumentException($"input {x} has no feature dimension");
        if (w.Rank != 2) throw new ArgumentException($"weight {w} is not [out_features, in_features]");
        if (x[-1] != w[1]) throw new ArgumentException($"input {x} has {x[-1]} features but weight {w} expects {w[1]}");
        if (bias is not null && (bias.Rank != 1 || bias[0] != w[0]))
            throw new ArgumentException($"bias {bias} does not match weight {w} (expected [{w[0]}])");
        long tokens = x.Elements / x[-1];
        if (tokens > int.MaxValue) throw new ArgumentException($"input {x} has too many tokens");
        var p = TernaryLinearParams.Create((int)tokens, w[0], w[1], ScaleMode(scale, w[0], w), bias is not null, Activations);
        try { p.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"input {x}, weight {w}: {e.Message}", e); }
        return p;
    }

    /// <summary>[1] is one gamma for the tensor, [rows] one per output row (a [1] scale of a 1-row weight counts as per tensor).</summary>
    internal static TernaryScale ScaleMode(Shape scale, int rows, Shape w)
    {
        if (scale.Rank == 1 && scale[0] == 1) return TernaryScale.Tensor;
        if (scale.Rank == 1 && scale[0] == rows) return TernaryScale.Row;
        throw new ArgumentException($"scale {scale} fits neither one gamma ([1]) nor one per output row ([{rows}]) of weight {w}");
    }

    public override string ToString() => $"ternary_linear({Activations})";
}
