namespace GpuAnomaly.Kernels.Memory;

/// <summary>Float64 references of the hybrid-memory ops and the coreset: the tests' yardstick.</summary>
public static class MemoryReference
{
    /// <summary><see cref="HybridMemoryScoreParams"/>: y [Q, 3], best [Q].</summary>
    public static void Score(in HybridMemoryScoreParams p, ReadOnlySpan<float> queries, ReadOnlySpan<float> memory, Span<float> y, Span<int> best)
    {
        p.CheckLengths(queries.Length, memory.Length, y.Length, best.Length);
        var logits = new double[p.P];
        for (int q = 0; q < p.Q; q++)
        {
            double max = double.NegativeInfinity;
            int at = 0;
            for (int k = 0; k < p.P; k++)
            {
                double s = 0;
                for (int j = 0; j < p.D; j++) s += (double)queries[q * p.D + j] * memory[k * p.D + j];
                logits[k] = s / p.Tau;
                if (logits[k] > max) { max = logits[k]; at = k; }
            }
            double sum = 0;
            for (int k = 0; k < p.P; k++) sum += Math.Exp(logits[k] - max);
            double lse = max + Math.Log(sum);
            y[q * HybridMemoryScoreParams.Outputs + HybridMemoryScoreParams.LogSumExp] = (float)lse;
            y[q * HybridMemoryScoreParams.Outputs + HybridMemoryScoreParams.BestSimilarity] = (float)(max * p.Tau);
            y[q * HybridMemoryScoreParams.Outputs + HybridMemoryScoreParams.BestProbability] = (float)Math.Exp(max - lse);
            best[q] = at;
        }
    }

    /// <summary><see cref="HybridMemoryUpdateParams"/>, in place on <paramref name="memory"/>.</summary>
    public static void Update(in HybridMemoryUpdateParams p, Span<float> memory, ReadOnlySpan<float> features, ReadOnlySpan<int> indices)
    {
        p.CheckArguments(memory.Length, features.Length, indices);
        var row = new double[p.D];
        for (int b = 0; b < p.B; b++)
        {
            int r = indices[b];
            double norm = 0;
            for (int j = 0; j < p.D; j++)
            {
                row[j] = (double)p.Momentum * memory[r * p.D + j] + (1.0 - p.Momentum) * features[b * p.D + j];
                norm += row[j] * row[j];
            }
            norm = Math.Sqrt(norm);
            for (int j = 0; j < p.D; j++) memory[r * p.D + j] = p.Normalize == 0 ? (float)row[j] : norm > 0 ? (float)(row[j] / norm) : 0f;
        }
    }

    /// <summary>
    /// <see cref="CoresetParams"/>: selected [Count], minDistances [N]. <paramref name="projected"/> receives the
    /// float64 projected features when given ([N, Dims]).
    /// </summary>
    public static void Coreset(in CoresetParams p, ReadOnlySpan<float> features, ReadOnlySpan<float> projection, Span<int> selected, Span<float> minDistances)
    {
        p.CheckLengths(features.Length, projection.Length, selected.Length, minDistances.Length);
        int n = p.N, dims = p.Dims;
        var y = new double[(long)n * dims];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < dims; c++)
            {
                if (p.Projected == 0) { y[(long)i * dims + c] = features[i * p.D + c]; continue; }
                double s = 0;
                for (int j = 0; j < p.D; j++) s += (double)features[i * p.D + j] * projection[j * p.Projected + c];
                y[(long)i * dims + c] = s;
            }
        var min = new double[n];
        Array.Fill(min, double.PositiveInfinity);
        int pick = p.Start;
        for (int t = 0; t < p.Count; t++)
        {
            selected[t] = pick;
            int next = 0;
            double far = double.NegativeInfinity;
            for (int i = 0; i < n; i++)
            {
                double s = 0;
                for (int c = 0; c < dims; c++)
                {
                    double e = y[(long)i * dims + c] - y[(long)pick * dims + c];
                    s += e * e;
                }
                if (s < min[i]) min[i] = s;
                if (min[i] > far) { far = min[i]; next = i; }
            }
            pick = next;
        }
        for (int i = 0; i < n; i++) minDistances[i] = (float)min[i];
    }
}
