namespace GpuAnomaly.Kernels.Knn;

/// <summary>Squared L2 norms of the rows of a bank [N, D] (the L2 kNN's precomputed input), in float64.</summary>
public static class RowNormsReference
{
    public static void Forward(int n, int d, ReadOnlySpan<float> rows, Span<float> norms)
    {
        if (rows.Length != (long)n * d || norms.Length != n)
            throw new ArgumentException($"row_norms: rows {rows.Length}, norms {norms.Length} do not fit N={n} D={d}");
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int j = 0; j < d; j++) s += (double)rows[i * d + j] * rows[i * d + j];
            norms[i] = (float)s;
        }
    }
}

/// <summary>
/// Exact kNN (<see cref="KnnParams"/>) in float64, distance by distance (the direct form, sum of squared
/// differences, not the expanded one the fast kernels use), full sort with ties by the lower index. Slow and
/// obviously right: the tests' yardstick. <paramref name="exact"/> receives the float64 distances [Q, K].
/// </summary>
public static class KnnReference
{
    public static void Forward(in KnnParams p, ReadOnlySpan<float> queries, ReadOnlySpan<float> bank,
        Span<float> distances, Span<int> indices, Span<double> exact = default)
    {
        p.Validate();
        if (queries.Length != p.QueryElements || bank.Length != p.BankElements || distances.Length != p.OutputElements || indices.Length != p.OutputElements)
            throw new ArgumentException($"knn reference: buffer sizes do not fit {p}");
        var d = new double[p.N];
        var order = new int[p.N];
        for (int q = 0; q < p.Q; q++)
        {
            for (int i = 0; i < p.N; i++)
            {
                double s = 0;
                for (int j = 0; j < p.D; j++)
                {
                    double a = queries[q * p.D + j], b = bank[i * p.D + j];
                    s += p.Metric == KnnMetric.L2 ? (a - b) * (a - b) : a * b;
                }
                d[i] = p.Metric == KnnMetric.L2 ? s : -s; // sort ascending either way
                order[i] = i;
            }
            Array.Sort(order, (x, y) => d[x] != d[y] ? d[x].CompareTo(d[y]) : x.CompareTo(y));
            for (int k = 0; k < p.K; k++)
            {
                int i = order[k];
                double v = p.Metric == KnnMetric.L2 ? d[i] : -d[i];
                distances[q * p.K + k] = (float)v;
                indices[q * p.K + k] = i;
                if (!exact.IsEmpty) exact[q * p.K + k] = v;
            }
        }
    }
}
