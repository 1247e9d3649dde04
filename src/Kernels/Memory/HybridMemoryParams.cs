namespace GpuAnomaly.Kernels.Memory;

/// <summary>
/// SpCL's hybrid memory scoring (METHODS.md §5) of Q L2-normalized queries [Q, D] against P prototypes [P, D]
/// (instance features, cluster and class centroids, all normalized): logits l_k = &lt;f, p_k&gt; / tau. Per query, one row
/// of <see cref="Outputs"/> floats — the stable log-sum-exp of the logits, the best inner product &lt;f, p*&gt;, the
/// softmax probability of p* — and p*'s int32 index (ties: the lower index). The soft nearest-prototype score is
/// -tau * LogSumExp. The Q x P logits are never written to memory: an online (max, sum of exp) per query runs over
/// the same on-chip GEMM tiles as the kNN.
/// </summary>
public struct HybridMemoryScoreParams
{
    public const int Outputs = 3;
    public const int LogSumExp = 0, BestSimilarity = 1, BestProbability = 2;

    public int Q, P, D;
    /// <summary>Temperature; SpCL uses 0.05.</summary>
    public float Tau;

    public static HybridMemoryScoreParams Create(int q, int p, int d, float tau = 0.05f) => new() { Q = q, P = p, D = d, Tau = tau };

    public readonly long QueryElements => (long)Q * D;
    public readonly long MemoryElements => (long)P * D;
    public readonly long OutputElements => (long)Q * Outputs;
    public readonly double Flops => 2.0 * Q * P * D;

    public readonly void Validate()
    {
        if (Q < 1 || P < 1 || D < 1)
            throw new ArgumentException($"hybrid_memory_score: sizes must be positive ({this})");
        if (!(Tau > 0) || !float.IsFinite(Tau))
            throw new ArgumentException($"hybrid_memory_score: temperature must be positive and finite ({this})");
        if (QueryElements > int.MaxValue || MemoryElements > int.MaxValue || OutputElements > int.MaxValue)
            throw new ArgumentException($"hybrid_memory_score: tensors above 2^31 elements are not supported ({this})");
    }

    /// <summary>Checks queries [Q, D], memory [P, D], y [Q, 3], best index [Q].</summary>
    public readonly void CheckLengths(long queries, long memory, long y, long best)
    {
        Validate();
        if (queries != QueryElements || memory != MemoryElements || y != OutputElements || best != Q)
            throw new ArgumentException($"hybrid_memory_score: queries {queries}, memory {memory}, y {y}, best {best} elements do not fit {this} " +
                "(queries Q*D, memory P*D, y Q*3, best Q)");
    }

    public override readonly string ToString() => $"Q={Q} P={P} D={D} tau={Tau}";
}

/// <summary>
/// SpCL's memory update: for each batch item b (in order), row r = indices[b] of memory [N, D] becomes
/// m * v_r + (1 - m) * f_b and is then divided by its L2 norm (a zero row stays zero). An index repeated in a batch
/// is applied once per occurrence, in batch order, on every device. With Normalize = 0 the row is the moving average
/// as it is (a memory-bank row in an L2 feature space, where re-normalizing would move it off the data).
/// </summary>
public struct HybridMemoryUpdateParams
{
    public int N, D, B;
    /// <summary>Momentum m in [0, 1]; SpCL uses 0.2.</summary>
    public float Momentum;
    /// <summary>1: divide the row by its L2 norm after the update (SpCL's normalized memory); 0: plain moving average (an L2 memory bank).</summary>
    public int Normalize;

    public static HybridMemoryUpdateParams Create(int n, int d, int b, float momentum = 0.2f, bool normalize = true) =>
        new() { N = n, D = d, B = b, Momentum = momentum, Normalize = normalize ? 1 : 0 };

    public readonly long MemoryElements => (long)N * D;
    public readonly long FeatureElements => (long)B * D;

    public readonly void Validate()
    {
        if (N < 1 || D < 1 || B < 1)
            throw new ArgumentException($"hybrid_memory_update: sizes must be positive ({this})");
        if (!(Momentum >= 0 && Momentum <= 1))
            throw new ArgumentException($"hybrid_memory_update: momentum must be in [0, 1] ({this})");
        if (MemoryElements > int.MaxValue || FeatureElements > int.MaxValue)
            throw new ArgumentException($"hybrid_memory_update: tensors above 2^31 elements are not supported ({this})");
    }

    /// <summary>Checks memory [N, D], features [B, D], indices [B] and that every index is a row of the memory.</summary>
    public readonly void CheckArguments(long memory, long features, ReadOnlySpan<int> indices)
    {
        Validate();
        if (memory != MemoryElements || features != FeatureElements || indices.Length != B)
            throw new ArgumentException($"hybrid_memory_update: memory {memory}, features {features}, indices {indices.Length} elements do not fit {this}");
        for (int b = 0; b < indices.Length; b++)
            if ((uint)indices[b] >= (uint)N)
                throw new ArgumentException($"hybrid_memory_update: index {indices[b]} (batch item {b}) is not a row of the {N}-row memory");
    }

    public override readonly string ToString() => $"N={N} D={D} B={B} momentum={Momentum}{(Normalize != 0 ? " normalized" : "")}";
}
