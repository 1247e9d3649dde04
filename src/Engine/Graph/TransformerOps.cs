using GpuAnomaly.Kernels.Transformer;

namespace GpuAnomaly.Engine;

/// <summary>nn.Linear: x [..., K], weight [N, K], optional bias [N] -> [..., N], then the epilogue (none or GELU).</summary>
public sealed class LinearOp(Epilogue act = Epilogue.None) : Op
{
    public Epilogue Act { get; } = act;
    public override string Kind => "linear";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 2, 3);
        Params(inputs[0], inputs[1], inputs.Count == 3 ? inputs[2] : null);
        return LastDim(inputs[0], inputs[1][0]);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var bias = inputs.Count == 3 ? inputs[2] : null;
        device.Linear(Params(inputs[0].Shape, inputs[1].Shape, bias?.Shape), inputs[0], inputs[1], bias, output);
    }

    public override double Flops(IReadOnlyList<Shape> inputs, Shape output) => 2.0 * output.Elements * inputs[1][1];

    public LinearParams Params(Shape x, Shape w, Shape? bias)
    {
        if (x.Rank < 1) throw new ArgumentException($"input {x} has no feature dimension");
        if (w.Rank != 2) throw new ArgumentException($"weight {w} is not [out_features, in_features]");
        if (x[-1] != w[1]) throw new ArgumentException($"input {x} has {x[-1]} features but weight {w} expects {w[1]}");
        if (bias is not null && (bias.Rank != 1 || bias[0] != w[0]))
            throw new ArgumentException($"bias {bias} does not match weight {w} (expected [{w[0]}])");
        var p = LinearParams.Create(checked((int)(x.Elements / x[-1])), w[1], w[0], bias is not null, Act);
        try { p.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"input {x}, weight {w}: {e.Message}", e); }
        return p;
    }

    internal static Shape LastDim(Shape x, int n)
    {
        var dims = new int[x.Rank];
        for (int i = 0; i < x.Rank - 1; i++) dims[i] = x[i];
        dims[^1] = n;
        return new Shape(dims);
    }

    public override string ToString() => Act == Epilogue.None ? "linear" : $"linear(+{Act})";
}

/// <summary>nn.LayerNorm over the last dimension: x [..., C], weight [C], bias [C].</summary>
public sealed class LayerNormOp(float eps = 1e-5f) : Op
{
    public float Eps { get; } = eps;
    public override string Kind => "layer_norm";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 3, 3);
        Params(inputs[0], inputs[1], inputs[2]);
        return inputs[0];
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output) =>
        device.LayerNorm(Params(inputs[0].Shape, inputs[1].Shape, inputs[2].Shape), inputs[0], inputs[1], inputs[2], output);

    public LayerNormParams Params(Shape x, Shape weight, Shape bias)
    {
        if (x.Rank < 1) throw new ArgumentException($"input {x} has no feature dimension");
        int c = x[-1];
        if (weight.Rank != 1 || weight[0] != c || bias.Rank != 1 || bias[0] != c)
            throw new ArgumentException($"weight {weight} and bias {bias} must be [{c}] for input {x}");
        var p = LayerNormParams.Create(checked((int)(x.Elements / c)), c, Eps);
        p.Validate();
        return p;
    }

    public override string ToString() => $"layer_norm(eps={Eps})";
}

/// <summary>GELU, exact erf form (nn.GELU()).</summary>
public sealed class GeluOp : ElementwiseOp
{
    public override string Kind => "gelu";
    protected override int Arity => 1;
    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output) => device.Gelu(inputs[0], output);
}

/// <summary>
/// Depthwise Conv2d (stride 1, "same" padding kernel / 2) on tokens: x [B, H*W, C] seen as the channels-last map
/// [B, H, W, C], weight [C, 1, k, k], bias [C], then the epilogue; output [B, H*W, C]. H and W are attributes.
/// </summary>
public sealed class DwConvTokensOp(int h, int w, Epilogue act = Epilogue.None) : Op
{
    public int H { get; } = h;
    public int W { get; } = w;
    public Epilogue Act { get; } = act;
    public override string Kind => "dwconv";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 2, 3);
        Params(inputs[0], inputs[1], inputs.Count == 3 ? inputs[2] : null);
        return inputs[0];
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var bias = inputs.Count == 3 ? inputs[2] : null;
        device.DwConv(Params(inputs[0].Shape, inputs[1].Shape, bias?.Shape), inputs[0], inputs[1], bias, output);
    }

    public override double Flops(IReadOnlyList<Shape> inputs, Shape output) => 2.0 * output.Elements * inputs[1][2] * inputs[1][3];

    public DwConvParams Params(Shape x, Shape w, Shape? bias)
    {
        if (x.Rank != 3 || x[1] != H * W) throw new ArgumentException($"input {x} is not [B, {H * W}, C] tokens of a {H}x{W} map");
        int c = x[2];
        if (w.Rank != 4 || w[0] != c || w[1] != 1 || w[2] != w[3] || w[2] % 2 == 0)
            throw new ArgumentException($"weight {w} is not a depthwise [{c}, 1, k, k] kernel with odd k");
        if (bias is not null && (bias.Rank != 1 || bias[0] != c)) throw new ArgumentException($"bias {bias} is not [{c}]");
        var p = DwConvParams.Create(x[0], H, W, c, w[2], bias is not null, Act);
        p.Validate();
        return p;
    }

    public override string ToString() => $"dwconv({H}x{W}{(Act == Epilogue.None ? "" : $" +{Act}")})";
}

/// <summary>Mean over tokens (global average pooling): [B, T, C] -> [B, C].</summary>
public sealed class TokenMeanOp : Op
{
    public override string Kind => "token_mean";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (x.Rank != 3) throw new ArgumentException($"input {x} is not [B, tokens, C]");
        return new Shape(x[0], x[2]);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var x = inputs[0].Shape;
        device.TokenMean(TokensParams.Create(x[0], x[1], x[2]), inputs[0], output);
    }
}

/// <summary>A conv's NCHW output [B, C, H, W] as tokens [B, H*W, C] (the patch embedding's flatten + transpose).</summary>
public sealed class TokensFromNchwOp : Op
{
    public override string Kind => "to_tokens";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (x.Rank != 4) throw new ArgumentException($"input {x} is not NCHW");
        return new Shape(x[0], x[2] * x[3], x[1]);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var x = inputs[0].Shape;
        device.TokensFromNchw(TokensParams.Create(x[0], x[2] * x[3], x[1]), inputs[0], output);
    }
}
