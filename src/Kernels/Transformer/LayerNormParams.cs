namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// nn.LayerNorm(C) with elementwise affine over the last dimension of x [M, C]:
/// y = (x - mean) / sqrt(var + Eps) * weight + bias, var biased (divided by C), as PyTorch.
/// </summary>
public struct LayerNormParams
{
    public int M, C;
    public float Eps;

    public static LayerNormParams Create(int m, int c, float eps = 1e-5f) => new() { M = m, C = c, Eps = eps };

    public readonly long Elements => (long)M * C;

    public readonly void Validate()
    {
        if (M < 1 || C < 1)
            throw new ArgumentException($"layer_norm: sizes must be positive ({this})");
        if (!(Eps >= 0) || float.IsInfinity(Eps))
            throw new ArgumentException($"layer_norm: eps must be finite and >= 0 ({this})");
        if (Elements > int.MaxValue)
            throw new ArgumentException($"layer_norm: tensors above 2^31 elements are not supported ({this})");
    }

    internal readonly void CheckLengths(long x, long weight, long bias, long y)
    {
        Validate();
        if (x != Elements || y != Elements || weight != C || bias != C)
            throw new ArgumentException($"layer_norm: buffer sizes x={x} weight={weight} bias={bias} y={y} do not match {this} " +
                                        $"(expected x=y={Elements}, weight=bias={C})");
    }

    public override readonly string ToString() => $"x=[{M}, {C}] eps={Eps}";
}
