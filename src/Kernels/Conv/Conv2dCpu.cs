using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
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
        int oh = p.OutH, ow = p.OutW, sw = p.StrideW, kw = p.KW, dw = p.DilW, pl = p.PadLeft, width = p.W;
        float* src = x + ((long)n * p.CIn + c) * p.H * width;
        float* dst = y + (long)plane * oh * ow;
        float* wk = w + (long)co * p.KH * kw;
        float b0 = bias != null ? bias[co] : 0f;
        // Interior columns [oxA, oxB) read every tap inside the row: no bounds checks, vectorized when stride is 1.
        int oxA = Math.Min(ow, (pl + sw - 1) / sw);
        int last = width - 1 + pl - (kw - 1) * dw;
        int oxB = last >= 0 ? Math.Clamp(last / sw + 1, oxA, ow) : oxA;
        int vec = Vector256<float>.Count;
        for (int oy = 0; oy < oh; oy++)
        {
            float* yrow = dst + (long)oy * ow;
            int iy0 = oy * p.StrideH - p.PadTop;
            for (int ox = 0; ox < oxA; ox++) yrow[ox] = DepthwiseEdge(p, src, wk, b0, iy0, ox);
            for (int ox = oxB; ox < ow; ox++) yrow[ox] = DepthwiseEdge(p, src, wk, b0, iy0, ox);
            int o = oxA;
            if (sw == 1)
                for (; o + vec <= oxB; o += vec)
                {
                    var acc = Vector256.Create(b0);
                    for (int ky = 0; ky < p.KH; ky++)
                    {
                        int iy = iy0 + ky * p.DilH;
                        if ((uint)iy >= (uint)p.H) continue;
                        float* s = src + (long)iy * width + o - pl;
                        float* wr = wk + ky * kw;
                        for (int kx = 0; kx < kw; kx++)
                            acc = Vector256.FusedMultiplyAdd(Vector256.Create(wr[kx]), Vector256.Load(s + kx * dw), acc);
                    }
                    acc.Store(yrow + o);
                }
            for (; o < oxB; o++)
            {
                float acc = b0;
                for (int ky = 0; ky < p.KH; ky++)
                {
                    int iy = iy0 + ky * p.DilH;
                    if ((uint)iy >= (uint)p.H) continue;
                    float* s = src + (long)iy * width + o * sw - pl;
                    float* wr = wk + ky * kw;
                    for (int kx = 0; kx < kw; kx++) acc += wr[kx] * s[kx * dw];
                }
                yrow[o] = acc;
            }
        }
        var outPlane = new Span<float>(dst, oh * ow);
        if (p.Act == Activation.Relu) TensorPrimitives.Max(outPlane, 0f, outPlane);
        else if (p.Act == Activation.LeakyRelu)
            for (int i = 0; i < outPlane.Length; i++)
                if (!(outPlane[i] >= 0)) outPlane[i] *= p.Slope;
    }

    /// <summary>One output of a depthwise plane with every tap bounds-checked (the padded border).</summary>
    private static float DepthwiseEdge(in Conv2dParams p, float* src, float* wk, float b0, int iy0, int ox)
    {
        float acc = b0;
        int ix0 = ox * p.StrideW - p.PadLeft;
        for (int ky = 0; ky < p.KH; ky++)
        {
            int iy = iy0 + ky * p.DilH;
            if ((uint)iy >= (uint)p.H) continue;
            float* s = src + (long)iy * p.W;
            for (int kx = 0; kx < p.KW; kx++)
            {
                int ix = ix0 + kx * p.DilW;
                if ((uint)ix < (uint)p.W) acc += wk[ky * p.KW + kx] * s[ix];
            }
        }
        return acc;
    }
}
