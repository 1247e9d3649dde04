using System.Numerics;
using System.Runtime.CompilerServices;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// Channels-last depthwise convolution for the `cpu` device: SIMD over channels (contiguous in both x and y).
/// The weights are reordered once per call to [tap, C] (KH KW C floats) so that a tap's weights for a vector of
/// channels are one load; output rows spread over the cores when the map is large. Bias and GELU are fused.
/// </summary>
public static unsafe class DwConvCpu
{
    private const long ParallelMinOutputs = 1 << 14;

    /// <param name="bias">[C], or empty when p.HasBias == 0.</param>
    public static void Forward(in DwConvParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y)
    {
        p.CheckLengths(x.Length, w.Length, bias.Length, y.Length);
        int taps = p.KH * p.KW, c = p.C;
        // Channel stride padded to whole vectors, zeros past C: the channel loop never needs a scalar tail on the weights.
        int cPad = (c + Vector<float>.Count - 1) / Vector<float>.Count * Vector<float>.Count;
        var wt = new float[taps * cPad + cPad];
        for (int ch = 0; ch < c; ch++)
        {
            for (int t = 0; t < taps; t++) wt[t * cPad + ch] = w[ch * taps + t];
            wt[taps * cPad + ch] = p.HasBias != 0 ? bias[ch] : 0f; // the bias row after the taps
        }
        fixed (float* px = x, pwt = wt, py = y)
        {
            int rows = p.B * p.OutH;
            if (p.OutputElements < ParallelMinOutputs) Rows(p, px, pwt, cPad, py, 0, rows);
            else
            {
                var pp = p;
                float* cx = px, cw = pwt, cy = py;
                int chunks = Math.Min(rows, Environment.ProcessorCount * 4);
                Parallel.For(0, chunks, i => Rows(pp, cx, cw, cPad, cy, (int)((long)rows * i / chunks), (int)((long)rows * (i + 1) / chunks)));
            }
        }
    }

    // Hot loop: compiled fully optimized at first call, not after tier-0 (short CLI runs never reach tier 1).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows(in DwConvParams p, float* x, float* wt, int cPad, float* y, int r0, int r1)
    {
        int c = p.C, v = Vector<float>.Count, oh = p.OutH, ow = p.OutW, taps = p.KH * p.KW;
        bool gelu = p.Act == Epilogue.Gelu;
        float* tmp = Workspace.Output(cPad); // the last partial vector of channels, written through a buffer
        float* bias = wt + (long)taps * cPad;
        for (int r = r0; r < r1; r++)
        {
            int b = r / oh, oy = r - b * oh;
            for (int ox = 0; ox < ow; ox++)
            {
                float* yp = y + ((long)r * ow + ox) * c;
                for (int c0 = 0; c0 < c; c0 += v)
                {
                    var acc = Vector.Load(bias + c0);
                    for (int ky = 0; ky < p.KH; ky++)
                    {
                        int iy = oy - p.PadH + ky;
                        if ((uint)iy >= (uint)p.H) continue;
                        float* xRow = x + ((long)(b * p.H + iy) * p.W) * c + c0;
                        float* wRow = wt + (long)ky * p.KW * cPad + c0;
                        for (int kx = 0; kx < p.KW; kx++)
                        {
                            int ix = ox - p.PadW + kx;
                            if ((uint)ix >= (uint)p.W) continue;
                            acc += Load(xRow + (long)ix * c, c - c0) * Vector.Load(wRow + kx * cPad);
                        }
                    }
                    if (gelu) acc = Gelu.Apply(acc);
                    if (c0 + v <= c) acc.Store(yp + c0);
                    else
                    {
                        acc.Store(tmp);
                        for (int j = 0; j < c - c0; j++) yp[c0 + j] = tmp[j];
                    }
                }
            }
        }
    }

    /// <summary>A vector of channels; the last partial one is gathered so nothing past the tensor is read.</summary>
    private static Vector<float> Load(float* p, int left)
    {
        if (left >= Vector<float>.Count) return Vector.Load(p);
        Span<float> buf = stackalloc float[Vector<float>.Count];
        for (int j = 0; j < left; j++) buf[j] = p[j];
        return new Vector<float>(buf);
    }
}
