using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Pool;

/// <summary>
/// MaxPool2d / AvgPool2d kernels for an ILGPU accelerator: implicitly grouped, one thread per
/// output element. Consecutive threads take consecutive output columns, so with stride 1 a
/// warp reads one contiguous input span per window tap (coalesced).
/// </summary>
public sealed class Pool2dGpu
{
    private readonly Action<Index1D, Pool2dParams, ArrayView<float>, ArrayView<float>> _max;
    private readonly Action<Index1D, Pool2dParams, ArrayView<float>, ArrayView<float>> _avg;

    public Pool2dGpu(Accelerator accelerator)
    {
        _max = accelerator.LoadAutoGroupedStreamKernel<Index1D, Pool2dParams, ArrayView<float>, ArrayView<float>>(MaxPoolKernel);
        _avg = accelerator.LoadAutoGroupedStreamKernel<Index1D, Pool2dParams, ArrayView<float>, ArrayView<float>>(AvgPoolKernel);
    }

    /// <summary>Queues the pooling on the default stream; does not synchronize.</summary>
    /// <param name="x">[N, C, H, W].</param>
    /// <param name="y">[N, C, OutH, OutW], every element written.</param>
    public void Forward(in Pool2dParams p, ArrayView<float> x, ArrayView<float> y)
    {
        p.Validate();
        if (x.Length != p.InputElements || y.Length != p.OutputElements)
            throw new ArgumentException($"pool2d: input view has {x.Length} elements (expected {p.InputElements}), " +
                                        $"output view {y.Length} (expected {p.OutputElements}) for {p}");
        var kernel = p.Kind == PoolKind.Max ? _max : _avg;
        kernel((int)p.OutputElements, p, x, y);
    }

    /// <summary>Padding is -infinity: out-of-bounds taps are skipped; an all-padding window gives -inf as in PyTorch.</summary>
    private static void MaxPoolKernel(Index1D index, Pool2dParams p, ArrayView<float> x, ArrayView<float> y)
    {
        int ow = p.OutW, oh = p.OutH;
        int ox = index % ow, t = index / ow;
        int oy = t % oh, plane = t / oh;
        int planeBase = plane * p.H * p.W;
        int y0 = oy * p.StrideH - p.PadH, x0 = ox * p.StrideW - p.PadW;
        float max = float.NegativeInfinity;
        for (int ky = 0; ky < p.KH; ky++)
        {
            int iy = y0 + ky * p.DilH;
            if ((uint)iy >= (uint)p.H) continue;
            int rowBase = planeBase + iy * p.W;
            for (int kx = 0; kx < p.KW; kx++)
            {
                int ix = x0 + kx * p.DilW;
                if ((uint)ix >= (uint)p.W) continue;
                float v = x[rowBase + ix];
                // NaN propagates, as in PyTorch (a plain max would drop it).
                if (v > max || float.IsNaN(v)) max = v;
            }
        }
        y[index] = max;
    }

    /// <summary>Divides by KH*KW (count_include_pad) or by the in-bounds count; no dilation.</summary>
    private static void AvgPoolKernel(Index1D index, Pool2dParams p, ArrayView<float> x, ArrayView<float> y)
    {
        int ow = p.OutW, oh = p.OutH;
        int ox = index % ow, t = index / ow;
        int oy = t % oh, plane = t / oh;
        int planeBase = plane * p.H * p.W;
        int y0 = oy * p.StrideH - p.PadH, x0 = ox * p.StrideW - p.PadW;
        // Clip the window to the input once instead of testing every tap.
        int yBegin = Math.Max(y0, 0), yEnd = Math.Min(y0 + p.KH, p.H);
        int xBegin = Math.Max(x0, 0), xEnd = Math.Min(x0 + p.KW, p.W);
        float sum = 0f;
        for (int iy = yBegin; iy < yEnd; iy++)
        {
            int rowBase = planeBase + iy * p.W;
            for (int ix = xBegin; ix < xEnd; ix++) sum += x[rowBase + ix];
        }
        int divisor = p.CountIncludePad != 0 ? p.KH * p.KW : (yEnd - yBegin) * (xEnd - xBegin);
        y[index] = sum / divisor;
    }
}
