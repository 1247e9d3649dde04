namespace GpuAnomaly.Kernels.Pool;

public enum PoolKind
{
    Max = 0,
    Avg = 1,
}

/// <summary>
/// MaxPool2d / AvgPool2d over NCHW [N, C, H, W] -> [N, C, OutH, OutW], PyTorch semantics with
/// ceil_mode = False. Max pooling pads with -infinity and supports dilation; average pooling
/// has no dilation (DilH = DilW = 1) and divides by KH*KW when CountIncludePad = 1 (PyTorch's
/// default) or by the number of in-bounds elements otherwise.
/// </summary>
public struct Pool2dParams
{
    public PoolKind Kind;
    public int N, C, H, W;
    public int KH, KW;
    public int StrideH, StrideW;
    public int PadH, PadW;
    public int DilH, DilW;
    public int CountIncludePad;

    public readonly int OutH => (H + 2 * PadH - DilH * (KH - 1) - 1) / StrideH + 1;
    public readonly int OutW => (W + 2 * PadW - DilW * (KW - 1) - 1) / StrideW + 1;
    public readonly long InputElements => (long)N * C * H * W;
    public readonly long OutputElements => (long)N * C * OutH * OutW;

    /// <summary>PyTorch's defaults: stride = kernel when not given.</summary>
    public static Pool2dParams Create(PoolKind kind, int n, int c, int h, int w, int kernel,
        int? stride = null, int padding = 0, int dilation = 1, bool countIncludePad = true) => new()
    {
        Kind = kind, N = n, C = c, H = h, W = w, KH = kernel, KW = kernel,
        StrideH = stride ?? kernel, StrideW = stride ?? kernel, PadH = padding, PadW = padding,
        DilH = dilation, DilW = dilation, CountIncludePad = countIncludePad ? 1 : 0,
    };

    /// <summary>Throws <see cref="ArgumentException"/> describing the first inconsistency.</summary>
    public readonly void Validate()
    {
        if (N < 1 || C < 1 || H < 1 || W < 1 || KH < 1 || KW < 1)
            throw new ArgumentException($"pool2d: sizes must be positive ({this})");
        if (StrideH < 1 || StrideW < 1 || DilH < 1 || DilW < 1)
            throw new ArgumentException($"pool2d: stride and dilation must be >= 1 ({this})");
        if (Kind == PoolKind.Avg && (DilH != 1 || DilW != 1))
            throw new ArgumentException($"pool2d: average pooling has no dilation ({this})");
        // PyTorch: pad should be at most half of the (dilated) kernel size.
        if (PadH < 0 || PadW < 0 || PadH * 2 > DilH * (KH - 1) + 1 || PadW * 2 > DilW * (KW - 1) + 1)
            throw new ArgumentException($"pool2d: padding must be between 0 and half the kernel ({this})");
        if (H + 2 * PadH < DilH * (KH - 1) + 1 || W + 2 * PadW < DilW * (KW - 1) + 1)
            throw new ArgumentException($"pool2d: the window is larger than the padded input ({this})");
        if (InputElements > int.MaxValue || OutputElements > int.MaxValue)
            throw new ArgumentException($"pool2d: tensors above 2^31 elements are not supported ({this})");
    }

    public override readonly string ToString() =>
        $"{Kind} N={N} C={C} H={H} W={W} k={KH}x{KW} stride={StrideH}x{StrideW} pad={PadH}x{PadW} dil={DilH}x{DilW}" +
        (Kind == PoolKind.Avg ? $" countIncludePad={CountIncludePad}" : "");
}
