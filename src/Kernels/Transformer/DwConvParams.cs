namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// Depthwise Conv2d(C, C, (KH, KW), stride 1, padding (PadH, PadW), groups = C) on a channels-last token map
/// x [B, H, W, C] (the MLP's dwconv on [B, H*W, C] tokens), weight [C, 1, KH, KW] (PyTorch's layout), bias [C] when
/// HasBias = 1, then the <see cref="Epilogue"/> (Mix-FFN: dwconv -> GELU). Output [B, OutH, OutW, C];
/// OutH = H + 2 PadH - KH + 1 (= H for an odd kernel with padding (K - 1) / 2).
/// </summary>
public struct DwConvParams
{
    public int B, H, W, C;
    public int KH, KW, PadH, PadW;
    public int HasBias;
    public Epilogue Act;

    /// <summary>A "same" convolution: odd square kernel, padding kernel / 2.</summary>
    public static DwConvParams Create(int b, int h, int w, int c, int kernel = 3, bool bias = true, Epilogue act = Epilogue.None) =>
        new() { B = b, H = h, W = w, C = c, KH = kernel, KW = kernel, PadH = kernel / 2, PadW = kernel / 2, HasBias = bias ? 1 : 0, Act = act };

    public readonly int OutH => H + 2 * PadH - KH + 1;
    public readonly int OutW => W + 2 * PadW - KW + 1;
    public readonly long InputElements => (long)B * H * W * C;
    public readonly long WeightElements => (long)C * KH * KW;
    public readonly long OutputElements => (long)B * OutH * OutW * C;

    public readonly void Validate()
    {
        if (B < 1 || H < 1 || W < 1 || C < 1 || KH < 1 || KW < 1)
            throw new ArgumentException($"dwconv: sizes must be positive ({this})");
        if (PadH < 0 || PadW < 0 || PadH * 2 > KH || PadW * 2 > KW)
            throw new ArgumentException($"dwconv: padding must be between 0 and half the kernel ({this})");
        if (OutH < 1 || OutW < 1)
            throw new ArgumentException($"dwconv: the kernel is larger than the padded input ({this})");
        if (HasBias is not (0 or 1) || Act is not (Epilogue.None or Epilogue.Gelu))
            throw new ArgumentException($"dwconv: bad bias flag or activation ({this})");
        if (InputElements > int.MaxValue || OutputElements > int.MaxValue)
            throw new ArgumentException($"dwconv: tensors above 2^31 elements are not supported ({this})");
    }

    internal readonly void CheckLengths(long x, long w, long bias, long y)
    {
        Validate();
        long expectedBias = HasBias != 0 ? C : 0;
        if (x != InputElements || w != WeightElements || y != OutputElements || (HasBias != 0 && bias != expectedBias))
            throw new ArgumentException($"dwconv: buffer sizes x={x} w={w} bias={bias} y={y} do not match {this} " +
                                        $"(expected x={InputElements} w={WeightElements} bias={expectedBias} y={OutputElements})");
    }

    public override readonly string ToString() =>
        $"x=[{B}, {H}, {W}, {C}] weight=[{C}, 1, {KH}, {KW}] pad={PadH}x{PadW} bias={HasBias != 0} act={Act}";
}
