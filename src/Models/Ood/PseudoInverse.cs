namespace GpuAnomaly.Models.Ood;

/// <summary>
/// Moore-Penrose pseudo-inverse of a real matrix W [rows, cols] through the eigen-decomposition of
/// the smaller Gram matrix: W W^T = U diag(l) U^T when rows &lt;= cols, giving pinv(W) = W^T U diag(1/l) U^T;
/// otherwise W^T W = V diag(l) V^T and pinv(W) = V diag(1/l) V^T W^T. Eigenvalues l &lt;= max(rows, cols) *
/// 2^-52 * l_max are treated as zero (the Gram matrix is exact only to about that), i.e. singular values
/// below about 1e-7 sigma_max: coarser than numpy's SVD (1e-15), which matters only for nearly singular W.
/// </summary>
public static class PseudoInverse
{
    /// <summary>pinv(W) as [cols, rows] row-major.</summary>
    public static double[] Compute(ReadOnlySpan<double> w, int rows, int cols)
    {
        Check(w, rows, cols);
        var result = new double[(long)cols * rows];
        if (rows <= cols)
        {
            var (values, vectors) = Gram(w, rows, cols, rowsGram: true);
            // G+ = U diag(1/l) U^T  [rows, rows];  pinv = W^T G+
            var gInv = InverseFromEigen(values, vectors, rows, Cutoff(values, rows, cols));
            for (int j = 0; j < cols; j++)
                for (int i = 0; i < rows; i++)
                {
                    double acc = 0;
                    for (int k = 0; k < rows; k++) acc += w[k * cols + j] * gInv[k * rows + i];
                    result[j * rows + i] = acc;
                }
        }
        else
        {
            var (values, vectors) = Gram(w, rows, cols, rowsGram: false);
            var gInv = InverseFromEigen(values, vectors, cols, Cutoff(values, rows, cols)); // [cols, cols]
            for (int j = 0; j < cols; j++)
                for (int i = 0; i < rows; i++)
                {
                    double acc = 0;
                    for (int k = 0; k < cols; k++) acc += gInv[j * cols + k] * w[i * cols + k];
                    result[j * rows + i] = acc;
                }
        }
        return result;
    }

    /// <summary>
    /// An orthonormal basis of W's row space as rows [rank, cols]: u_i = W^T U_i / sqrt(l_i) for the
    /// non-negligible eigenpairs of W W^T (the right singular vectors).
    /// </summary>
    public static double[][] RowSpaceBasis(ReadOnlySpan<double> w, int rows, int cols)
    {
        Check(w, rows, cols);
        if (rows > cols)
        {
            var (values2, vectors2) = Gram(w, rows, cols, rowsGram: false);
            double cut2 = Cutoff(values2, rows, cols);
            return [.. Enumerable.Range(0, cols).Where(i => values2[i] > cut2).Select(i => vectors2[i])];
        }
        var (values, vectors) = Gram(w, rows, cols, rowsGram: true);
        double cut = Cutoff(values, rows, cols);
        var basis = new List<double[]>();
        for (int i = 0; i < rows; i++)
        {
            if (values[i] <= cut) continue;
            var u = new double[cols];
            double inv = 1 / Math.Sqrt(values[i]);
            for (int k = 0; k < rows; k++)
            {
                double coef = vectors[i][k] * inv;
                for (int j = 0; j < cols; j++) u[j] += coef * w[k * cols + j];
            }
            basis.Add(u);
        }
        return [.. basis];
    }

    private static void Check(ReadOnlySpan<double> w, int rows, int cols)
    {
        if (rows < 1 || cols < 1 || w.Length != (long)rows * cols)
            throw new ArgumentException($"pinv: {w.Length} elements do not form a {rows} x {cols} matrix");
    }

    private static double Cutoff(double[] values, int rows, int cols) =>
        Math.Max(rows, cols) * Math.Pow(2, -52) * Math.Max(values[0], 0);

    /// <summary>Eigen-decomposition of W W^T (rowsGram) or W^T W.</summary>
    private static (double[] Values, double[][] Vectors) Gram(ReadOnlySpan<double> w, int rows, int cols, bool rowsGram)
    {
        int m = rowsGram ? rows : cols;
        var g = new double[(long)m * m];
        for (int a = 0; a < m; a++)
            for (int b = a; b < m; b++)
            {
                double acc = 0;
                if (rowsGram) for (int k = 0; k < cols; k++) acc += w[a * cols + k] * w[b * cols + k];
                else for (int k = 0; k < rows; k++) acc += w[k * cols + a] * w[k * cols + b];
                g[a * m + b] = acc;
                g[b * m + a] = acc;
            }
        var eig = SymmetricEigen.Compute(g, m);
        return (eig.Values, eig.Vectors);
    }

    private static double[] InverseFromEigen(double[] values, double[][] vectors, int m, double cut)
    {
        var inv = new double[(long)m * m];
        for (int i = 0; i < m; i++)
        {
            if (values[i] <= cut) continue;
            double s = 1 / values[i];
            var u = vectors[i];
            for (int a = 0; a < m; a++)
            {
                double ua = u[a] * s;
                for (int b = 0; b < m; b++) inv[a * m + b] += ua * u[b];
            }
        }
        return inv;
    }
}
