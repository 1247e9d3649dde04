namespace GpuAnomaly.Kernels.Vim;

/// <summary>
/// Fused ViM scoring (METHODS.md section 2, Wang et al. CVPR 2022, haoqiwang/vim benchmark.py) of S samples.
/// Inputs: features x [S, N], classifier head W [C, N] and b [C] (PyTorch Linear layout), origin o [N]
/// and the residual basis stored transposed, Rt = R^T [K, N] row-major (K = N - D, one residual
/// eigenvector per row). Per sample:
/// <code>
/// l = W x + b;  r = ||Rt (x - o)||;  v = Alpha * r;  E = logsumexp(l)
/// ViM probability = exp(v) / (sum_j exp(l_j) + exp(v))      ViM score = v - E   (same ranking)
/// MSP = max_j softmax(l)_j;  MaxLogit = max_j l_j;  Energy = E;  Residual = r
/// </code>
/// The output is [S, <see cref="Outputs"/>], one row per sample, columns in the order of the constants below.
/// Sign convention: ViM, ViM score and Residual grow with "more OOD"; MSP, MaxLogit and Energy grow
/// with "more in-distribution" (as in the paper); callers that rank by OOD-ness negate those.
/// </summary>
public struct VimParams
{
    /// <summary>Columns of the output row of one sample.</summary>
    public const int Outputs = 6;
    public const int VimProbability = 0, VimScore = 1, Msp = 2, MaxLogit = 3, Energy = 4, Residual = 5;

    /// <summary>Samples, feature size, classes, residual dimension K = N - D.</summary>
    public int S, N, C, ResidualDim;
    /// <summary>Scale of the virtual logit: mean max logit / mean residual norm over the training set.</summary>
    public float Alpha;

    public static VimParams Create(int s, int n, int c, int residualDim, float alpha) =>
        new() { S = s, N = n, C = c, ResidualDim = residualDim, Alpha = alpha };

    public readonly long FeatureElements => (long)S * N;
    public readonly long WeightElements => (long)C * N;
    public readonly long BasisElements => (long)ResidualDim * N;
    public readonly long OutputElements => (long)S * Outputs;

    /// <summary>Throws <see cref="ArgumentException"/> describing the first inconsistency.</summary>
    public readonly void Validate()
    {
        if (S < 1 || N < 1 || C < 1)
            throw new ArgumentException($"vim_score: sizes must be positive ({this})");
        if (ResidualDim < 0 || ResidualDim > N)
            throw new ArgumentException($"vim_score: residual dimension must be between 0 and N ({this})");
        if (!float.IsFinite(Alpha))
            throw new ArgumentException($"vim_score: alpha must be finite ({this})");
        if (FeatureElements > int.MaxValue || WeightElements > int.MaxValue || BasisElements > int.MaxValue)
            throw new ArgumentException($"vim_score: tensors above 2^31 elements are not supported ({this})");
    }

    /// <summary>Checks x [S, N], W [C, N], b [C], o [N], Rt [K, N], y [S, Outputs].</summary>
    public readonly void CheckLengths(long x, long w, long b, long o, long rt, long y)
    {
        Validate();
        if (x != FeatureElements || w != WeightElements || b != C || o != N || rt != BasisElements || y != OutputElements)
            throw new ArgumentException($"vim_score: x {x}, W {w}, b {b}, o {o}, Rt {rt}, y {y} elements do not fit {this} " +
                "(x S*N, W C*N, b C, o N, Rt K*N, y S*6)");
    }

    public override readonly string ToString() => $"S={S} N={N} C={C} K={ResidualDim} alpha={Alpha}";
}
