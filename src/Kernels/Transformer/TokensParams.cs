namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// A token tensor [B, T, C] (channels-last, T = H*W of the map), for the token ops: the mean over tokens
/// (global average pooling -> [B, C]) and the layout change from a conv's NCHW [B, C, H, W] (T = H W) to tokens.
/// </summary>
public struct TokensParams
{
    public int B, T, C;

    public static TokensParams Create(int b, int t, int c) => new() { B = b, T = t, C = c };

    public readonly long Elements => (long)B * T * C;
    public readonly long PooledElements => (long)B * C;

    public readonly void Validate(string op)
    {
        if (B < 1 || T < 1 || C < 1)
            throw new ArgumentException($"{op}: sizes must be positive ({this})");
        if (Elements > int.MaxValue)
            throw new ArgumentException($"{op}: tensors above 2^31 elements are not supported ({this})");
    }

    internal readonly void CheckLengths(string op, long x, long expectedX, long y, long expectedY)
    {
        Validate(op);
        if (x != expectedX || y != expectedY)
            throw new ArgumentException($"{op}: buffer sizes x={x} y={y} do not match {this} (expected x={expectedX} y={expectedY})");
    }

    public override readonly string ToString() => $"B={B} T={T} C={C}";
}
