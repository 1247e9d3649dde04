namespace GpuAnomaly.Kernels.Transformer;

/// <summary>The token ops in float64: the kernel lab's reference.</summary>
public static class TokensReference
{
    /// <summary>[B, T, C] -> [B, C], the mean over T.</summary>
    public static double[] Mean(in TokensParams p, ReadOnlySpan<float> x)
    {
        p.CheckLengths("token_mean", x.Length, p.Elements, p.PooledElements, p.PooledElements);
        var y = new double[p.PooledElements];
        for (int b = 0; b < p.B; b++)
            for (int c = 0; c < p.C; c++)
            {
                double s = 0;
                for (int t = 0; t < p.T; t++) s += x[(b * p.T + t) * p.C + c];
                y[b * p.C + c] = s / p.T;
            }
        return y;
    }

    /// <summary>NCHW [B, C, T] -> tokens [B, T, C] (a pure permutation, so exact).</summary>
    public static double[] FromNchw(in TokensParams p, ReadOnlySpan<float> x)
    {
        p.CheckLengths("nchw_to_tokens", x.Length, p.Elements, p.Elements, p.Elements);
        var y = new double[p.Elements];
        for (int b = 0; b < p.B; b++)
            for (int c = 0; c < p.C; c++)
                for (int t = 0; t < p.T; t++)
                    y[(b * p.T + t) * p.C + c] = x[(b * p.C + c) * p.T + t];
        return y;
    }
}
