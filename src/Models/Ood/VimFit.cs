using System.Globalization;
using System.Text.Json;

namespace GpuAnomaly.Models.Ood;

/// <summary>
/// Fits ViM (METHODS.md section 2; Wang et al., CVPR 2022; haoqiwang/vim benchmark.py) in float64 on the
/// host from in-distribution training features x [S, N] and the classifier head W [C, N], b [C]:
/// <code>
/// o = -pinv(W) b;  Sigma = (1/S) sum_s (x_s - o)(x_s - o)^T  (uncentered, as EmpiricalCovariance(assume_centered=True))
/// Sigma = V diag(l) V^T, l descending;  R = eigenvectors D .. N-1 (the residual space)
/// alpha = mean_s max_j l_j(x_s)  /  mean_s ||R^T (x_s - o)||
/// </code>
/// D follows the official rule: 1000 if N &gt;= 2048, 512 if N &gt;= 768, else N / 2; overridable.
/// </summary>
public static class VimFit
{
    /// <summary>The official principal dimension for feature size n.</summary>
    public static int DefaultPrincipalDim(int n) => n >= 2048 ? 1000 : n >= 768 ? 512 : n / 2;

    public static VimFitResult Fit(ReadOnlySpan<float> features, int samples, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        int classes, int? principalDim = null)
    {
        if (samples < 1 || classes < 1 || features.Length % samples != 0)
            throw new ArgumentException($"vim_fit: {features.Length} feature values are not {samples} samples");
        int n = features.Length / samples, c = classes;
        if (w.Length != (long)c * n || b.Length != c)
            throw new ArgumentException($"vim_fit: W has {w.Length} values and b {b.Length}, expected [{c}, {n}] and [{c}]");
        int d = principalDim ?? DefaultPrincipalDim(n);
        if (d < 0 || d >= n)
            throw new ArgumentException($"vim_fit: principal dimension {d} must be in [0, {n}) for N = {n}");

        var wd = ToDouble(w);
        var pinv = PseudoInverse.Compute(wd, c, n); // [n, c]
        var o = new double[n];
        for (int j = 0; j < n; j++)
        {
            double acc = 0;
            for (int ci = 0; ci < c; ci++) acc += pinv[j * c + ci] * b[ci];
            o[j] = -acc;
        }

        var x = new double[(long)samples * n];
        for (int s = 0; s < samples; s++)
            for (int j = 0; j < n; j++) x[(long)s * n + j] = features[s * n + j] - o[j];
        var cov = Covariance(x, samples, n);
        var eig = SymmetricEigen.Compute(cov, n);

        int k = n - d;
        var rt = new float[(long)k * n];
        var basis = new double[k][];
        for (int i = 0; i < k; i++)
        {
            basis[i] = eig.Vectors[d + i];
            for (int j = 0; j < n; j++) rt[(long)i * n + j] = (float)basis[i][j];
        }

        double sumMax = 0, sumR = 0;
        for (int s = 0; s < samples; s++)
        {
            double m = double.NegativeInfinity;
            for (int ci = 0; ci < c; ci++)
            {
                double l = b[ci];
                for (int j = 0; j < n; j++) l += wd[ci * n + j] * features[s * n + j];
                m = Math.Max(m, l);
            }
            sumMax += m;
            double sq = 0;
            for (int i = 0; i < k; i++)
            {
                double z = 0;
                var v = basis[i];
                for (int j = 0; j < n; j++) z += v[j] * x[(long)s * n + j];
                sq += z * z;
            }
            sumR += Math.Sqrt(sq);
        }
        double alpha = sumMax / sumR;
        return new VimFitResult(n, c, d, alpha, [.. o.Select(v => (float)v)], rt, [.. eig.Values]);
    }

    /// <summary>(1/S) X^T X for X [S, N]: the upper triangle over the cores, mirrored.</summary>
    internal static double[] Covariance(double[] x, int samples, int n)
    {
        var cov = new double[(long)n * n];
        Parallel.For(0, n, a =>
        {
            for (int bIdx = a; bIdx < n; bIdx++)
            {
                double acc = 0;
                for (int s = 0; s < samples; s++) acc += x[(long)s * n + a] * x[(long)s * n + bIdx];
                cov[(long)a * n + bIdx] = acc / samples;
            }
        });
        for (int a = 0; a < n; a++)
            for (int bIdx = 0; bIdx < a; bIdx++) cov[(long)a * n + bIdx] = cov[(long)bIdx * n + a];
        return cov;
    }

    internal static double[] ToDouble(ReadOnlySpan<float> a)
    {
        var r = new double[a.Length];
        for (int i = 0; i < a.Length; i++) r[i] = a[i];
        return r;
    }
}

/// <summary>
/// What the ViM scorer needs: origin o [N], the residual basis transposed Rt = R^T [N - D, N] (row i is
/// the eigenvector of the (D + i)-th largest eigenvalue), alpha and D; plus the covariance spectrum for
/// inspection. Stored in a model file as tensors "vim.origin", "vim.residual_basis_t",
/// "vim.eigenvalues" and metadata keys "vim.feature_dim", "vim.classes", "vim.principal_dim", "vim.alpha".
/// </summary>
public sealed record VimFitResult(int FeatureDim, int Classes, int PrincipalDim, double Alpha, float[] Origin,
    float[] ResidualBasisT, double[] Eigenvalues)
{
    public int ResidualDim => FeatureDim - PrincipalDim;

    public IReadOnlyDictionary<string, (float[] Data, int[] Shape)> ToTensors() => new Dictionary<string, (float[] Data, int[] Shape)>
    {
        ["vim.origin"] = (Origin, [FeatureDim]),
        ["vim.residual_basis_t"] = (ResidualBasisT, [ResidualDim, FeatureDim]),
        ["vim.eigenvalues"] = ([.. Eigenvalues.Select(v => (float)v)], [FeatureDim]),
    };

    /// <summary>A JSON object of the scalars; alpha in round-trip notation (float64).</summary>
    public string ToMetadataJson() => JsonSerializer.Serialize(new Dictionary<string, string>
    {
        ["vim.feature_dim"] = FeatureDim.ToString(CultureInfo.InvariantCulture),
        ["vim.classes"] = Classes.ToString(CultureInfo.InvariantCulture),
        ["vim.principal_dim"] = PrincipalDim.ToString(CultureInfo.InvariantCulture),
        ["vim.alpha"] = Alpha.ToString("R", CultureInfo.InvariantCulture),
    });

    public static VimFitResult FromTensors(IReadOnlyDictionary<string, (float[] Data, int[] Shape)> tensors, string metadataJson)
    {
        var meta = OodSerialization.ParseMetadata(metadataJson, "vim");
        int n = OodSerialization.Int(meta, "vim.feature_dim"), c = OodSerialization.Int(meta, "vim.classes");
        int d = OodSerialization.Int(meta, "vim.principal_dim");
        double alpha = OodSerialization.Double(meta, "vim.alpha");
        if (n < 1 || c < 1 || d < 0 || d >= n)
            throw new ArgumentException($"vim: metadata N = {n}, C = {c}, D = {d} are inconsistent");
        var o = OodSerialization.Tensor(tensors, "vim.origin", [n]);
        var rt = OodSerialization.Tensor(tensors, "vim.residual_basis_t", [n - d, n]);
        var ev = OodSerialization.Tensor(tensors, "vim.eigenvalues", [n]);
        return new VimFitResult(n, c, d, alpha, o, rt, [.. ev.Select(v => (double)v)]);
    }
}
