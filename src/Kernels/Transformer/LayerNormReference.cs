namespace GpuAnomaly.Kernels.Transformer;

/// <summary>nn.LayerNorm over the last dimension in float64: the kernel lab's reference.</summary>
public static class LayerNormReference
{
    public static double[] Forward(in LayerNormParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias)
    {
        p.CheckLengths(x.Length, weight.Length, bias.Length, x.Length);
        var y = new double[p.Elements];
        for (int m = 0; m < p.M; m++)
        {
            var row = x.Slice(m * p.C, p.C);
            double mean = 0, var = 0;
            foreach (float v in row) mean += v;
            mean /= p.C;
            foreach (float v in row) var += (v - mean) * (v - mean);
            double rstd = 1 / Math.Sqrt(var / p.C + p.Eps);
            for (int c = 0; c < p.C; c++) y[m * p.C + c] = (row[c] - mean) * rstd * weight[c] + bias[c];
        }
        return y;
    }
}
