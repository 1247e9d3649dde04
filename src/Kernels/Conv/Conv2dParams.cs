namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// Everything a 2-D convolution kernel needs to know, in PyTorch's terms: NCHW input
/// [N, CIn, H, W], weight [COut, CIn / Groups, KH, KW], optional bias [COut], output
/// [N, COut, OutH, OutW]. Padding may be asymmetric (PyTorch's padding=p is
/// PadTop = PadBottom = PadLeft = PadRight = p): dense patch extraction pads by p - 1
/// with ceil on top/left and floor on bottom/right, and fusing that pad saves a copy.
/// The epilogue applies bias, then the activation. Plain unmanaged struct: it is passed
/// to GPU kernels by value.
/// </summary>
public struct Conv2dParams
{
    public int N, CIn, H, W;
    public int COut, KH, KW;
    public int StrideH, StrideW;
    public int PadTop, PadLeft, PadBottom, PadRight;
    public int DilH, DilW;
    public int Groups;
    /// <summary>1 when a bias is added, 0 otherwise (int rather than bool: blittable in kernels).</summary>
    public int HasBias;
    public Activation Act;
    public float Slope;

    public readonly int OutH => (H + PadTop + PadBottom - DilH * (KH - 1) - 1) / StrideH + 1;
    public readonly int OutW => (W + PadLeft + PadRight - DilW * (KW - 1) - 1) / StrideW + 1;
    public readonly int CInPerGroup => CIn / Groups;
    public readonly int COutPerGroup => COut / Groups;

    public readonly long InputElements => (long)N * CIn * H * W;
    public readonly long WeightElements => (long)COut * CInPerGroup * KH * KW;
    public readonly long OutputElements => (long)N * COut * OutH * OutW;
    /// <summary>Multiply-adds count twice; bias and activation are not counted.</summary>
    public readonly double Flops => 2.0 * N * COut * OutH * OutW * CInPerGroup * KH * KW;

    /// <summary>A symmetric convolution as PyTorch's nn.Conv2d describes it.</summary>
    public static Conv2dParams Create(int n, int cIn, int h, int w, int cOut, int kh, int kw,
        int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true,
        Activation act = Activation.None, float slope = 0.01f) => new()
    {
        N = n, CIn = cIn, H = h, W = w, COut = cOut, KH = kh, KW = kw,
        StrideH = stride, StrideW = stride,
        PadTop = padding, PadLeft = padding, PadBottom = padding, PadRight = padding,
        DilH = dilation, DilW = dilation, Groups = groups, HasBias = bias ? 1 : 0,
        Act = act, Slope = slope,
    };

    /// <summary>Throws <see cref="ArgumentException"/> describing the first inconsistency.</summary>
    public readonly void Validate()
    {
        if (N < 1 || CIn < 1 || H < 1 || W < 1 || COut < 1 || KH < 1 || KW < 1)
            throw new ArgumentException($"conv2d: sizes must be positive ({this})");
        if (StrideH < 1 || StrideW < 1 || DilH < 1 || DilW < 1)
            throw new ArgumentException($"conv2d: stride and dilation must be >= 1 ({this})");
        if (PadTop < 0 || PadLeft < 0 || PadBottom < 0 || PadRight < 0)
            throw new ArgumentException($"conv2d: padding must be >= 0 ({this})");
        if (Groups < 1 || CIn % Groups != 0 || COut % Groups != 0)
            throw new ArgumentException($"conv2d: groups={Groups} must divide CIn={CIn} and COut={COut}");
        if (H + PadTop + PadBottom < DilH * (KH - 1) + 1 || W + PadLeft + PadRight < DilW * (KW - 1) + 1)
            throw new ArgumentException($"conv2d: the dilated kernel is larger than the padded input ({this})");
        if (InputElements > int.MaxValue || OutputElements > int.MaxValue || WeightElements > int.MaxValue)
            throw new ArgumentException($"conv2d: tensors above 2^31 elements are not supported ({this})");
    }

    public override readonly string ToString() =>
        $"N={N} CIn={CIn} H={H} W={W} COut={COut} k={KH}x{KW} stride={StrideH}x{StrideW} " +
        $"pad=({PadTop},{PadLeft},{PadBottom},{PadRight}) dil={DilH}x{DilW} groups={Groups} " +
        $"bias={HasBias} act={Act}" + (Act == Activation.LeakyRelu ? $"({Slope})" : "");
}
