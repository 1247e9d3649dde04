using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// The token ops on an ILGPU accelerator, implicitly grouped: the mean over tokens is one thread per (b, c) walking T
/// (consecutive threads read consecutive channels: coalesced); NCHW -> tokens is one thread per output element
/// (coalesced writes, strided reads; the tensor is small next to the GEMMs around it).
/// </summary>
public sealed class TokensGpu
{
    private readonly Action<Index1D, TokensParams, ArrayView<float>, ArrayView<float>> _mean;
    private readonly Action<Index1D, TokensParams, ArrayView<float>, ArrayView<float>> _fromNchw;

    public TokensGpu(Accelerator accelerator)
    {
        _mean = accelerator.LoadAutoGroupedStreamKernel<Index1D, TokensParams, ArrayView<float>, ArrayView<float>>(MeanKernel);
        _fromNchw = accelerator.LoadAutoGroupedStreamKernel<Index1D, TokensParams, ArrayView<float>, ArrayView<float>>(FromNchwKernel);
    }

    /// <summary>Queues x [B, T, C] -> y [B, C] (mean over T); does not synchronize.</summary>
    public void Mean(in TokensParams p, ArrayView<float> x, ArrayView<float> y)
    {
        p.CheckLengths("token_mean", x.Length, p.Elements, y.Length, p.PooledElements);
        _mean((int)p.PooledElements, p, x, y);
    }

    /// <summary>Queues x [B, C, H, W] (T = H W) -> y [B, T, C]; does not synchronize.</summary>
    public void FromNchw(in TokensParams p, ArrayView<float> x, ArrayView<float> y)
    {
        p.CheckLengths("nchw_to_tokens", x.Length, p.Elements, y.Length, p.Elements);
        _fromNchw((int)p.Elements, p, x, y);
    }

    private static void MeanKernel(Index1D index, TokensParams p, ArrayView<float> x, ArrayView<float> y)
    {
        int c = index % p.C, b = index / p.C;
        long o = (long)b * p.T * p.C + c;
        float s0 = 0f, s1 = 0f;
        int t = 0;
        for (; t + 1 < p.T; t += 2)
        {
            s0 += x[o + (long)t * p.C];
            s1 += x[o + (long)(t + 1) * p.C];
        }
        if (t < p.T) s0 += x[o + (long)t * p.C];
        y[index] = (s0 + s1) / p.T;
    }

    private static void FromNchwKernel(Index1D index, TokensParams p, ArrayView<float> x, ArrayView<float> y)
    {
        int c = index % p.C, t = index / p.C;
        int tok = t % p.T, b = t / p.T;
        y[index] = x[((long)b * p.C + c) * p.T + tok];
    }
}
