using GpuAnomaly.Kernels.Vim;

namespace GpuAnomaly.Engine;

/// <summary>
/// Fused ViM scoring (<see cref="VimParams"/>): inputs features [S, N], head weight [C, N], head bias [C], origin [N],
/// residual basis transposed [K, N]; output [S, 6] (ViM probability, ViM score, MSP, MaxLogit, Energy, residual norm):
/// logits, projection, norm and softmax in one pass, nothing intermediate in memory.
/// </summary>
public sealed class VimScoreOp(float alpha) : Op
{
    public float Alpha { get; } = alpha;
    public override string Kind => "vim_score";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 5, 5);
        var p = Params(inputs);
        return new Shape(p.S, VimParams.Outputs);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output) =>
        device.VimScore(Params(inputs.Select(t => t.Shape).ToList()), inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], output);

    public VimParams Params(IReadOnlyList<Shape> s)
    {
        Shape x = s[0], w = s[1], b = s[2], o = s[3], rt = s[4];
        if (x.Rank != 2 || w.Rank != 2 || w[1] != x[1] || b.Rank != 1 || b[0] != w[0] || o.Rank != 1 || o[0] != x[1] || rt.Rank != 2 || rt[1] != x[1])
            throw new ArgumentException($"vim_score: features {x}, W {w}, b {b}, origin {o}, residual basis {rt} do not fit ([S, N], [C, N], [C], [N], [K, N])");
        var p = VimParams.Create(x[0], x[1], w[0], rt[0], Alpha);
        p.Validate();
        return p;
    }

    public override string ToString() => $"vim_score(alpha={Alpha})";
}
