namespace GpuAnomaly.Kernels.Ternary;

/// <summary>How a ternary layer treats its activations (METHODS.md §3).</summary>
public enum TernaryActivations
{
    /// <summary>W1.58A32 (1.58-bit FLUX): float activations, multiply-free float accumulation.</summary>
    A32 = 0,
    /// <summary>
    /// W1.58A8 (BitNet b1.58): each token (row of x) quantized to int8 by absmax,
    /// s = 127 / max(max|x|, 1e-5), x_q = clamp(round_half_even(x * s), -128, 127), computed in
    /// float32; exact int32 accumulation of W_t x_q; y = acc * gamma / s + bias.
    /// </summary>
    A8 = 1,
}

/// <summary>
/// TernaryLinear, y = (W_t x) * gamma + bias, as nn.Linear lays it out: x [M, K] (M tokens, batch
/// 1 = GEMV), packed weight [N, Words(K)] (see <see cref="TernaryPacking"/>), scale [1] or [N],
/// optional bias [N], y [M, N]. Plain unmanaged struct: passed to GPU kernels by value.
/// </summary>
public struct TernaryLinearParams
{
    public int M, N, K;
    /// <summary>1 when scale holds one gamma per output row, 0 for one gamma.</summary>
    public int ScalePerRow;
    public int HasBias;
    public TernaryActivations Activations;

    public readonly int KWords => TernaryPacking.Words(K);
    public readonly long InputElements => (long)M * K;
    public readonly long OutputElements => (long)M * N;
    public readonly long WeightWords => (long)N * KWords;
    public readonly int ScaleElements => ScalePerRow != 0 ? N : 1;
    /// <summary>Adds count twice, as for a float GEMM of the same shape (the FLOP-equivalent rate).</summary>
    public readonly double Flops => 2.0 * M * N * K;
    /// <summary>Bytes a kernel must move at least once: packed weights, x, y, scale, bias.</summary>
    public readonly double MinBytes => WeightWords * 4.0 + (InputElements + OutputElements + ScaleElements + (HasBias != 0 ? N : 0)) * 4.0;

    public static TernaryLinearParams Create(int m, int n, int k, TernaryScale scale = TernaryScale.Tensor,
        bool bias = true, TernaryActivations activations = TernaryActivations.A32) => new()
    {
        M = m, N = n, K = k, ScalePerRow = scale == TernaryScale.Row ? 1 : 0, HasBias = bias ? 1 : 0, Activations = activations,
    };

    public readonly void Validate()
    {
        if (M < 1 || N < 1 || K < 1)
            throw new ArgumentException($"ternary_linear: sizes must be positive ({this})");
        if (ScalePerRow is not (0 or 1) || HasBias is not (0 or 1) || Activations is not (TernaryActivations.A32 or TernaryActivations.A8))
            throw new ArgumentException($"ternary_linear: invalid flags ({this})");
        if (OutputElements > int.MaxValue || InputElements > int.MaxValue || WeightWords > int.MaxValue)
            throw new ArgumentException($"ternary_linear: tensors above 2^31 elements are not supported ({this})");
    }

    public override readonly string ToString() =>
        $"M={M} N={N} K={K} scale={(ScalePerRow != 0 ? "row" : "tensor")} bias={HasBias} act={Activations}";
}
