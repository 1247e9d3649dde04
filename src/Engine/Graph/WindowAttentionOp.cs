using GpuAnomaly.Kernels.Attention;

namespace GpuAnomaly.Engine;

/// <summary>
/// Grouped multi-head attention over a token map (METHODS.md §4; <see cref="WindowAttentionParams"/> has the exact
/// semantics): inputs qkv [B, H*W, 3C] (the qkv Linear's output), padQkv [3C] (the qkv of a zero token, i.e. the qkv
/// bias: what padded tokens hold when a side is not a multiple of the window or sparsity) and, for windows with a
/// relative position bias, the table [(2ws-1)^2, heads]; output [B, H*W, C] in token order. The map's H and W are
/// attributes: a token list does not know its own shape.
/// </summary>
public sealed class WindowAttentionOp : Op
{
    private readonly WindowAttentionParams _template;

    private WindowAttentionOp(WindowAttentionParams template) => _template = template;

    /// <summary>Swin windows of ws x ws, cyclically shifted by <paramref name="shift"/> (0 = none).</summary>
    public static WindowAttentionOp Window(int h, int w, int heads, int windowSize, int shift, bool relativeBias) =>
        new(WindowAttentionParams.Window(1, h, w, heads, 1, windowSize, shift, relativeBias));

    /// <summary>SparseViT groups of tokens <paramref name="sparsity"/> apart (1 = global attention).</summary>
    public static WindowAttentionOp Sparse(int h, int w, int heads, int sparsity) =>
        new(WindowAttentionParams.Sparse(1, h, w, heads, 1, sparsity));

    public override string Kind => "window_attention";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 2, 3);
        var p = Params(inputs[0], inputs[1], inputs.Count == 3 ? inputs[2] : null);
        return new Shape(p.B, p.Tokens, p.Channels);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var bias = inputs.Count == 3 ? inputs[2] : null;
        device.WindowAttention(Params(inputs[0].Shape, inputs[1].Shape, bias?.Shape), inputs[0], inputs[1], bias, output);
    }

    public override double Flops(IReadOnlyList<Shape> inputs, Shape output) =>
        Params(inputs[0], inputs[1], inputs.Count == 3 ? inputs[2] : null).Flops;

    public WindowAttentionParams Params(Shape qkv, Shape padQkv, Shape? biasTable)
    {
        var t = _template;
        if (qkv.Rank != 3 || qkv[2] % (3 * t.Heads) != 0)
            throw new ArgumentException($"qkv {qkv} is not [B, tokens, 3 * heads * d] for {t.Heads} heads");
        if (qkv[1] != t.H * t.W)
            throw new ArgumentException($"qkv {qkv} has {qkv[1]} tokens, the map is {t.H}x{t.W}");
        if (padQkv.Rank != 1 || padQkv[0] != qkv[2])
            throw new ArgumentException($"padQkv {padQkv} is not [{qkv[2]}] (the qkv of a zero token)");
        var p = t;
        p.B = qkv[0];
        p.HeadDim = qkv[2] / (3 * t.Heads);
        if ((biasTable is not null) != (p.HasRelativeBias != 0))
            throw new ArgumentException(p.HasRelativeBias != 0 ? "this window attention needs a relative position bias table" : "this attention takes no bias table");
        try { p.CheckLengths(qkv.Elements, padQkv.Elements, biasTable?.Elements ?? 0, (long)p.B * p.Tokens * p.Channels); }
        catch (ArgumentException e) { throw new ArgumentException($"qkv {qkv}: {e.Message}", e); }
        return p;
    }

    public override string ToString() => _template.Grouping == AttentionGrouping.Window
        ? $"window_attention(ws={_template.WindowSize} shift={_template.Shift} heads={_template.Heads} map={_template.H}x{_template.W}{(_template.HasRelativeBias != 0 ? " bias" : "")})"
        : $"sparse_attention(S={_template.Sparsity} heads={_template.Heads} map={_template.H}x{_template.W})";
}
