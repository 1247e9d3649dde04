using GpuAnomaly.Kernels.Conv;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// Conv2d with ternary weights: the weight [COut, CIn/groups, KH, KW] is packed as a [COut, K]
/// matrix, K = CIn/groups*KH*KW in (c, kh, kw) order (PyTorch's memory order), scale [1] or
/// [COut]; y = gamma * conv(x, W_t) + bias, then the activation.
/// A8 quantizes activations with one absmax scale per image (s_n over the image's CIn*H*W
/// values; padding is 0): a per-pixel scale cannot be factored out of a KxK window's sum, and
/// a per-image one keeps BitNet's single float rescale per output.
/// </summary>
public struct TernaryConv2dParams
{
    public Conv2dParams Conv;
    public int ScalePerRow;
    public TernaryActivations Activations;

    public readonly int K => Conv.CInPerGroup * Conv.KH * Conv.KW;
    public readonly int KWords => TernaryPacking.Words(K);
    public readonly long WeightWords => (long)Conv.COut * KWords;
    public readonly int ScaleElements => ScalePerRow != 0 ? Conv.COut : 1;

    public static TernaryConv2dParams Create(in Conv2dParams conv, TernaryScale scale = TernaryScale.Tensor,
        TernaryActivations activations = TernaryActivations.A32) => new()
    {
        Conv = conv, ScalePerRow = scale == TernaryScale.Row ? 1 : 0, Activations = activations,
    };

    public readonly void Validate()
    {
        Conv.Validate();
        if (ScalePerRow is not (0 or 1) || Activations is not (TernaryActivations.A32 or TernaryActivations.A8))
            throw new ArgumentException($"ternary_conv2d: invalid flags ({this})");
    }

    public override readonly string ToString() =>
        $"{Conv} ternary scale={(ScalePerRow != 0 ? "row" : "tensor")} act={Activations}";
}
