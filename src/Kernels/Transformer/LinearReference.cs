namespace GpuAnomaly.Kernels.Transformer;

/// <summary>nn.Linear in float64: the kernel lab's reference.</summary>
public static class LinearReference
{
    public static double[] Forward(in LinearParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias)
    {
        p.CheckLengths(x.Length, w.Length, bias.Length, p.OutputElements);
        var y = new double[p.OutputElements];
        for (int m = 0; m < p.M; m++)
            for (int n = 0; n < p.N; n++)
            {
                double s = p.HasBias != 0 ? bias[n] : 0;
                for (int k = 0; k < p.K; k++) s += (double)x[m * p.K + k] * w[n * p.K + k];
                y[m * p.N + n] = p.Act == Epilogue.Gelu ? Gelu.Reference(s) : s;
            }
        return y;
    }
}
