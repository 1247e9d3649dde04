namespace GpuAnomaly.Kernels.Transformer;

/// <summary>What a Transformer kernel applies to its outputs after the bias.</summary>
public enum Epilogue
{
    None = 0,
    /// <summary>GELU, exact erf form (<see cref="Gelu"/>).</summary>
    Gelu = 1,
}

/// <summary>
/// nn.Linear: y[M, N] = x[M, K] W^T + bias, W given in PyTorch's layout [N, K] (out_features, in_features),
/// bias [N] when HasBias = 1, then the <see cref="Epilogue"/>. M is every leading dimension flattened (batch x tokens).
/// </summary>
public struct LinearParams
{
    public int M, K, N;
    public int HasBias;
    public Epilogue Act;

    public static LinearParams Create(int m, int k, int n, bool bias = true, Epilogue act = Epilogue.None) =>
        new() { M = m, K = k, N = n, HasBias = bias ? 1 : 0, Act = act };

    public readonly long InputElements => (long)M * K;
    public readonly long WeightElements => (long)N * K;
    public readonly long OutputElements => (long)M * N;

    /// <summary>Throws <see cref="ArgumentException"/> describing the first inconsistency.</summary>
    public readonly void Validate()
    {
        if (M < 1 || K < 1 || N < 1)
            throw new ArgumentException($"linear: sizes must be positive ({this})");
        if (HasBias is not (0 or 1) || Act is not (Epilogue.None or Epilogue.Gelu))
            throw new ArgumentException($"linear: bad bias flag or activation ({this})");
        if (InputElements > int.MaxValue || WeightElements > int.MaxValue || OutputElements > int.MaxValue)
            throw new ArgumentException($"linear: tensors above 2^31 elements are not supported ({this})");
    }

    /// <summary>Checks buffer lengths against the shapes; bias must be empty when HasBias = 0.</summary>
    internal readonly void CheckLengths(long x, long w, long bias, long y)
    {
        Validate();
        long expectedBias = HasBias != 0 ? N : 0;
        if (x != InputElements || w != WeightElements || y != OutputElements || (HasBias != 0 && bias != expectedBias))
            throw new ArgumentException($"linear: buffer sizes x={x} w={w} bias={bias} y={y} do not match {this} " +
                                        $"(expected x={InputElements} w={WeightElements} bias={expectedBias} y={OutputElements})");
    }

    public override readonly string ToString() => $"x=[{M}, {K}] weight=[{N}, {K}] bias={(HasBias != 0 ? $"[{N}]" : "none")} act={Act}";
}
