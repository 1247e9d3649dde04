using System.Numerics.Tensors;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// Conv2d for the `cpu` device: managed SIMD, multi-threaded. Per (image, group) the convolution is the GEMM
/// Y[COut/g, OutH*OutW] = W[COut/g, CIn/g*KH*KW] * im2col(X); <see cref="Sgemm"/> runs it with the im2col
/// matrix packed on the fly (<see cref="Im2ColPacker"/>) and bias + activation fused into the micro-kernel.
/// Convolutions with one input channel per group (depthwise) have no reduction worth a GEMM and run as a
/// direct vectorized loop instead.
/// </summary>
public static unsafe class Conv2dCpu
{
    /// <param name="bias">[COut], or empty when p.HasBias == 0.</param>
    /// <param name="y">[N, COut, OutH, OutW], every element written.</param>
    public static void Forward(in Conv2dParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        ReadOnlySpan<float> bias, Span<float> y)
    {
        p.Validate();
        if (x.Length != p.InputElements || w.Length != p.WeightElements || y.Length != p.OutputElements
            || (p.HasBias != 0 && bias.Length != p.COut))
            throw new ArgumentException(
                $"conv2d: buffer sizes x={x.Length} w={w.Length} bias={bias.Length} y={y.Length} do not match {p} " +
                $"(expected x={p.InputElements} w={p.WeightElements} bias={(p.HasBias != 0 ? p.COut : 0)} y={p.OutputElements})");

        fixed (float* px = x, pw = w, pb = bias, py = y)
        {
            float* pBias = p.HasBias != 0 ? pb : null;
            if (p.CInPerGroup == 1) Depthwise(p, px, pw, pBias, py);
            else Gemm(p, px, pw, pBias, py);
        }
    }

    private static void Gemm(in Conv2dParams p, float* x, float* w, float* bias, float* y)
    {
        int cog = p.COutPerGroup, k = p.CInPerGroup * p.KH * p.KW, spatial = p.OutH * p.OutW;
        bool use512 = Sgemm.Use512;
        long groupA = Sgemm.PackedASize(cog, k, use512);
        float* a = Workspace.A(groupA * p.Groups);
        for (int g = 0; g < p.Groups; g++)
            Sgemm.PackA(w + (long)g * cog * k, k, cog, k, a + g * groupA, use512);
        var problem = new GemmProblem
        {
            Use512 = use512,
            Batches = p.N, Groups = p.Groups, M = cog, N = spatial, K = k,
            APacked = (nint)a,
            C = (nint)y, CBatchStride = (long)p.COut * spatial, CGroupStride = (long)cog * spatial, Ldc = spatial,
            Bias = (nint)bias, Act = p.Act, Slope = p.Slope,
        };
        Sgemm.Run(problem, new Im2ColPacker { X = x, P = p });
    }

    /// <summary>One input channel per group: each output plane is a sum of KH*KW shifted, scaled input rows.</summary>
    private static void Depthwise(in Conv2dParams p, float* x, float* w, float* bias, float* y)
    {
        var q = p;
        nint xp = (nint)x, wp = (nint)w, bp = (nint)bias, yp = (nint)y;
        int planes = p.N * p.COut;
        if (p.Flops < 1e6) for (int i = 0; i < planes; i++) DepthwisePlane(q, (float*)xp, (float*)wp, (float*)bp, (float*)yp, i);
        else Parallel.For(0, planes, i => DepthwisePlane(q, (float*)xp, (float*)wp, (float*)bp, (float*)yp, i));
    }

    private static void DepthwisePlane(in Conv2dParams p, float* x, float* w, float* bias, float* y, int plane)
    {
        int n = plane / p.COut, co = plane - n * p.COut;
        int c = co / p.COutPerGroup;
        int oh = p.OutH, ow = p.OutW, sw = p.StrideW;
        float* src = x + ((long)n * p.CIn + c) * p.H * p.W;
        float* dst = y + (long)plane * oh * ow;
        float* wk = w + (long)co * p.KH * p.KW;
        var outPlane = new Span<float>(dst, oh * ow);
        outPlane.Fill(bias != null ? bias[co] : 0f);
        for (int oy = 0; oy < oh; oy++)
        {
            var yrow = new Span<float>(dst + (long)oy * ow, ow);
            for (int ky = 0; ky < p.KH; ky++)
            {
                int iy = oy * p.StrideH - p.PadTop + ky * p.DilH;
                if ((uint)iy >= (uint)p.H) continue;
                float* srow = src + (long)iy * p.W;
                for (int kx = 0; kx < p.KW; kx++)
                {
                    float wv = wk[ky * p.KW + kx];
                    int ixb = kx * p.DilW - p.PadLeft;
                    int lo = ixb >= 0 ? 0 : (-ixb + sw - 1) / sw;
                    int hi = ixb >= p.W ? 0 : Math.Min(ow, (p.W - 1 - ixb) / sw + 1);
                    if (hi <= lo) continue;
                    if (sw == 1)
                    {
                        var seg = yrow.Slice(lo, hi - lo);
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(srow + ixb + lo, hi - lo), wv, seg, seg);
                    }
                    else
                    {
                        for (int ox = lo; ox < hi; ox++) yrow[ox] += wv * srow[ixb + ox * sw];
                    }
                }
            }
        }
        if (p.Act == Activation.Relu) TensorPrimitives.Max(outPlane, 0f, outPlane);
        else if (p.Act == Activation.LeakyRelu)
            for (int i = 0; i < outPlane.Length; i++)
                if (!(outPlane[i] >= 0)) outPlane[i] *= p.Slope;
    }
}
