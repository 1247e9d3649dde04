using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Resize;

/// <summary>
/// One axis of a resize, for the kernel (rank &lt;= 4: leading axes are size-1 identities): sizes, the scale and
/// onnx's real output length, the roi.
/// </summary>
public struct ResizeAxes
{
    public int In0, In1, In2, In3, Out0, Out1, Out2, Out3;
    public double Scale0, Scale1, Scale2, Scale3, Len0, Len1, Len2, Len3;
    public double RoiA0, RoiA1, RoiA2, RoiA3, RoiB0, RoiB1, RoiB2, RoiB3;
}

/// <summary>The attributes of a resize, for the kernel.</summary>
public struct ResizeAttributes
{
    public int Mode, Coordinate, Nearest, ExcludeOutside;
    public double CubicA;
    public float Extrapolation;
}

/// <summary>
/// ONNX Resize on an ILGPU accelerator, any mode, rank &lt;= 4: an implicitly grouped grid-stride kernel, one output
/// element per thread step, taps computed in the thread with <see cref="ResizeMath"/> (no tables, nothing allocated
/// per run). Consecutive threads take consecutive output columns, so a warp reads neighbouring input pixels.
/// </summary>
public sealed class ResizeGpu
{
    public const int MaxRank = 4;
    private static readonly ConditionalWeakTable<Accelerator, ResizeGpu> Loaded = new();
    private readonly Action<Index1D, int, int, ResizeAxes, ResizeAttributes, ArrayView<float>, ArrayView<float>> _kernel;
    private readonly int _gridThreads;

    private ResizeGpu(Accelerator accelerator)
    {
        _kernel = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, ResizeAxes, ResizeAttributes, ArrayView<float>, ArrayView<float>>(Kernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    /// <summary>The kernel loaded for an accelerator (once; kept while the accelerator lives).</summary>
    public static ResizeGpu For(Accelerator accelerator) => Loaded.GetValue(accelerator, a => new ResizeGpu(a));

    /// <summary>Queues the resize on the default stream; <paramref name="y"/> gets every element.</summary>
    public void Forward(in ResizeAxes axes, in ResizeAttributes attributes, ArrayView<float> x, ArrayView<float> y)
    {
        long inElems = (long)axes.In0 * axes.In1 * axes.In2 * axes.In3, outElems = (long)axes.Out0 * axes.Out1 * axes.Out2 * axes.Out3;
        if (x.Length != inElems || y.Length != outElems)
            throw new ArgumentException($"resize: views of {x.Length} and {y.Length} elements for {inElems} -> {outElems}");
        if (attributes.Mode is < 0 or > 2) throw new ArgumentException($"resize mode {attributes.Mode}");
        int n = checked((int)outElems);
        if (n > 0) { int t = Math.Min(n, _gridThreads); _kernel(t, n, t, axes, attributes, x, y); }
    }

    private static void Kernel(Index1D index, int n, int stride, ResizeAxes p, ResizeAttributes m, ArrayView<float> x, ArrayView<float> y)
    {
        int taps = ResizeMath.Taps(m.Mode);
        bool ex = m.ExcludeOutside != 0;
        for (int i = index; i < n; i += stride)
        {
            int r = i;
            int o3 = r % p.Out3; r /= p.Out3;
            int o2 = r % p.Out2; r /= p.Out2;
            int o1 = r % p.Out1;
            int o0 = r / p.Out1;
            double x0 = ResizeMath.Original(m.Coordinate, o0, p.In0, p.Out0, p.Scale0, p.Len0, p.RoiA0, p.RoiB0);
            double x1 = ResizeMath.Original(m.Coordinate, o1, p.In1, p.Out1, p.Scale1, p.Len1, p.RoiA1, p.RoiB1);
            double x2 = ResizeMath.Original(m.Coordinate, o2, p.In2, p.Out2, p.Scale2, p.Len2, p.RoiA2, p.RoiB2);
            double x3 = ResizeMath.Original(m.Coordinate, o3, p.In3, p.Out3, p.Scale3, p.Len3, p.RoiA3, p.RoiB3);
            if (ResizeMath.Extrapolates(m.Coordinate, x0, p.In0) || ResizeMath.Extrapolates(m.Coordinate, x1, p.In1)
                || ResizeMath.Extrapolates(m.Coordinate, x2, p.In2) || ResizeMath.Extrapolates(m.Coordinate, x3, p.In3))
            {
                y[i] = m.Extrapolation;
                continue;
            }
            int f0 = ResizeMath.First(m.Mode, m.Nearest, x0), f1 = ResizeMath.First(m.Mode, m.Nearest, x1);
            int f2 = ResizeMath.First(m.Mode, m.Nearest, x2), f3 = ResizeMath.First(m.Mode, m.Nearest, x3);
            bool e0 = ResizeMath.Excludes(m.Mode, ex, f0, p.In0), e1 = ResizeMath.Excludes(m.Mode, ex, f1, p.In1);
            bool e2 = ResizeMath.Excludes(m.Mode, ex, f2, p.In2), e3 = ResizeMath.Excludes(m.Mode, ex, f3, p.In3);
            double s0 = ResizeMath.InsideSum(m.Mode, e0, x0, f0, p.In0, m.CubicA), s1 = ResizeMath.InsideSum(m.Mode, e1, x1, f1, p.In1, m.CubicA);
            double s2 = ResizeMath.InsideSum(m.Mode, e2, x2, f2, p.In2, m.CubicA), s3 = ResizeMath.InsideSum(m.Mode, e3, x3, f3, p.In3, m.CubicA);
            float sum = 0;
            for (int t0 = 0; t0 < taps; t0++)
            {
                float w0 = TapWeight(m, e0, x0, f0, t0, p.In0, s0);
                if (w0 == 0) continue;
                int i0 = ResizeMath.Clamp(f0 + t0, p.In0);
                for (int t1 = 0; t1 < taps; t1++)
                {
                    float w1 = w0 * TapWeight(m, e1, x1, f1, t1, p.In1, s1);
                    if (w1 == 0) continue;
                    int i1 = i0 * p.In1 + ResizeMath.Clamp(f1 + t1, p.In1);
                    for (int t2 = 0; t2 < taps; t2++)
                    {
                        float w2 = w1 * TapWeight(m, e2, x2, f2, t2, p.In2, s2);
                        if (w2 == 0) continue;
                        int i2 = i1 * p.In2 + ResizeMath.Clamp(f2 + t2, p.In2);
                        for (int t3 = 0; t3 < taps; t3++)
                        {
                            float w3 = w2 * TapWeight(m, e3, x3, f3, t3, p.In3, s3);
                            if (w3 == 0) continue;
                            sum += w3 * x[i2 * p.In3 + ResizeMath.Clamp(f3 + t3, p.In3)];
                        }
                    }
                }
            }
            y[i] = sum;
        }
    }

    private static float TapWeight(ResizeAttributes m, bool ex, double xo, int first, int t, int inSize, double inside)
    {
        if (ex && (first + t < 0 || first + t >= inSize)) return 0;
        return (float)(ResizeMath.Weight(m.Mode, xo, t, m.CubicA) / inside);
    }
}
