namespace GpuAnomaly.Kernels.Knn;

/// <summary>How a query and a bank row are compared (METHODS.md §5).</summary>
public enum KnnMetric
{
    /// <summary>Squared Euclidean distance ||q||^2 + ||m||^2 - 2 q.m, clamped at 0; smallest first.</summary>
    L2 = 0,
    /// <summary>Inner product q.m (cosine on L2-normalized rows); largest first.</summary>
    InnerProduct = 1,
}

/// <summary>
/// Exact k-nearest-neighbour search (FAISS IndexFlatL2 / IndexFlatIP semantics) of Q queries [Q, D] against a bank
/// [N, D], both row-major F32. Outputs, best first: distances [Q, K] (squared L2 ascending, or inner products
/// descending) and int32 indices [Q, K] into the bank; equal distances are ordered by the lower index. The L2 metric
/// takes the bank's squared row norms [N] as an input (computed once when a bank is built, <see cref="RowNormsReference"/>):
/// the Q x N distance matrix is never written to memory, only each query's running top-k.
/// </summary>
public struct KnnParams
{
    /// <summary>The largest k: a query's top-k lives in registers / shared memory.</summary>
    public const int MaxK = 64;

    public int Q, N, D, K;
    public KnnMetric Metric;

    public static KnnParams Create(int q, int n, int d, int k, KnnMetric metric = KnnMetric.L2) =>
        new() { Q = q, N = n, D = d, K = k, Metric = metric };

    public readonly long QueryElements => (long)Q * D;
    public readonly long BankElements => (long)N * D;
    public readonly long OutputElements => (long)Q * K;
    /// <summary>Elements of the bank-norms input: N for L2; the inner product takes none (an empty tensor is accepted).</summary>
    public readonly long NormElements => Metric == KnnMetric.L2 ? N : 0;
    /// <summary>2 Q N D: the GEMM part.</summary>
    public readonly double Flops => 2.0 * Q * N * D;

    /// <summary>Throws <see cref="ArgumentException"/> describing the first inconsistency.</summary>
    public readonly void Validate()
    {
        if (Q < 1 || N < 1 || D < 1)
            throw new ArgumentException($"knn: sizes must be positive ({this})");
        if (K < 1 || K > MaxK)
            throw new ArgumentException($"knn: k = {K} is outside 1..{MaxK} ({this})");
        if (K > N)
            throw new ArgumentException($"knn: k = {K} exceeds the bank's {N} rows ({this})");
        if (Metric is not (KnnMetric.L2 or KnnMetric.InnerProduct))
            throw new ArgumentException($"knn: unknown metric {(int)Metric} ({this})");
        if (QueryElements > int.MaxValue || BankElements > int.MaxValue || OutputElements > int.MaxValue)
            throw new ArgumentException($"knn: tensors above 2^31 elements are not supported ({this})");
    }

    /// <summary>Checks queries [Q, D], bank [N, D], norms [N] (L2) , distances and indices [Q, K].</summary>
    public readonly void CheckLengths(long queries, long bank, long norms, long distances, long indices)
    {
        Validate();
        if (queries != QueryElements || bank != BankElements || distances != OutputElements || indices != OutputElements
            || (Metric == KnnMetric.L2 && norms != N))
            throw new ArgumentException($"knn: queries {queries}, bank {bank}, norms {norms}, distances {distances}, indices {indices} " +
                $"elements do not fit {this} (queries Q*D, bank N*D, norms N for L2, outputs Q*K)");
    }

    public override readonly string ToString() => $"Q={Q} N={N} D={D} k={K} {(Metric == KnnMetric.L2 ? "l2" : "ip")}";
}
