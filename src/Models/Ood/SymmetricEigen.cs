namespace GpuAnomaly.Models.Ood;

/// <summary>
/// Eigen-decomposition of a real symmetric matrix in float64, A = V diag(values) V^T: Householder
/// reduction to tridiagonal form, then the implicit QL algorithm with Wilkinson-type shifts
/// (the EISPACK tred2 / tql2 pair, as described in Golub and Van Loan, "Matrix Computations",
/// sections 8.3 and 8.5). O(N^3): N = 512 took 1.5 to 4 s in the Debug test build on a shared 2-core machine.
/// </summary>
public sealed class SymmetricEigen
{
    /// <summary>Eigenvalues, sorted descending.</summary>
    public double[] Values { get; }
    /// <summary>Orthonormal eigenvectors as rows: Vectors[i] belongs to Values[i].</summary>
    public double[][] Vectors { get; }

    private SymmetricEigen(double[] values, double[][] vectors)
    {
        Values = values;
        Vectors = vectors;
    }

    /// <summary>Decomposes the symmetric matrix <paramref name="a"/> (row-major n x n; only its symmetry is assumed, not checked beyond finiteness).</summary>
    public static SymmetricEigen Compute(ReadOnlySpan<double> a, int n)
    {
        if (n < 1 || a.Length != (long)n * n)
            throw new ArgumentException($"symmetric_eigen: {a.Length} elements do not form an {n} x {n} matrix");
        var v = new double[n][];
        for (int i = 0; i < n; i++)
        {
            v[i] = a.Slice(i * n, n).ToArray();
            foreach (double x in v[i])
                if (!double.IsFinite(x)) throw new ArgumentException($"symmetric_eigen: the {n} x {n} matrix holds a non-finite value");
        }
        var d = new double[n];
        var e = new double[n];
        Tridiagonalize(v, d, e, n); // v becomes V^T: eigenvectors as rows, as QL's rotations want them
        var z = v;
        ImplicitQl(z, d, e, n);

        var order = Enumerable.Range(0, n).OrderByDescending(i => d[i]).ToArray();
        return new SymmetricEigen(order.Select(i => d[i]).ToArray(), order.Select(i => z[i]).ToArray());
    }

    /// <summary>
    /// Householder reduction of the symmetric matrix to tridiagonal form: on return d holds the diagonal,
    /// e the sub-diagonal (e[0] = 0) and u the accumulated orthogonal transformation V, transposed.
    /// Written on u = V^T (u[b][a] is EISPACK's v[a][b]; the input is symmetric, so A^T = A): the
    /// O(n^3) loops, which walk columns of V, then walk contiguous rows.
    /// </summary>
    private static void Tridiagonalize(double[][] u, double[] d, double[] e, int n)
    {
        for (int j = 0; j < n; j++) d[j] = u[j][n - 1];
        for (int i = n - 1; i > 0; i--)
        {
            // Scale the row to avoid under/overflow in the Householder vector.
            double scale = 0, h = 0;
            for (int k = 0; k < i; k++) scale += Math.Abs(d[k]);
            if (scale == 0)
            {
                e[i] = d[i - 1];
                for (int j = 0; j < i; j++) { d[j] = u[j][i - 1]; u[j][i] = 0; u[i][j] = 0; }
            }
            else
            {
                for (int k = 0; k < i; k++) { d[k] /= scale; h += d[k] * d[k]; }
                double f = d[i - 1];
                double g = Math.Sqrt(h);
                if (f > 0) g = -g;
                e[i] = scale * g;
                h -= f * g;
                d[i - 1] = f - g;
                for (int j = 0; j < i; j++) e[j] = 0;
                // p = A u / h, formed column by column from the lower triangle.
                for (int j = 0; j < i; j++)
                {
                    f = d[j];
                    u[i][j] = f;
                    g = e[j] + u[j][j] * f;
                    for (int k = j + 1; k <= i - 1; k++)
                    {
                        g += u[j][k] * d[k];
                        e[k] += u[j][k] * f;
                    }
                    e[j] = g;
                }
                f = 0;
                for (int j = 0; j < i; j++) { e[j] /= h; f += e[j] * d[j]; }
                double hh = f / (h + h);
                for (int j = 0; j < i; j++) e[j] -= hh * d[j];
                // A = A - u q^T - q u^T on the lower triangle.
                for (int j = 0; j < i; j++)
                {
                    f = d[j];
                    g = e[j];
                    for (int k = j; k <= i - 1; k++) u[j][k] -= f * e[k] + g * d[k];
                    d[j] = u[j][i - 1];
                    u[j][i] = 0;
                }
            }
            d[i] = h;
        }

        // Accumulate the transformations.
        for (int i = 0; i < n - 1; i++)
        {
            u[i][n - 1] = u[i][i];
            u[i][i] = 1;
            double h = d[i + 1];
            if (h != 0)
            {
                for (int k = 0; k <= i; k++) d[k] = u[i + 1][k] / h;
                for (int j = 0; j <= i; j++)
                {
                    double g = 0;
                    for (int k = 0; k <= i; k++) g += u[i + 1][k] * u[j][k];
                    for (int k = 0; k <= i; k++) u[j][k] -= g * d[k];
                }
            }
            for (int k = 0; k <= i; k++) u[i + 1][k] = 0;
        }
        for (int j = 0; j < n; j++) { d[j] = u[j][n - 1]; u[j][n - 1] = 0; }
        u[n - 1][n - 1] = 1;
        e[0] = 0;
    }

    /// <summary>
    /// Implicit QL on the tridiagonal (d, e), shifting by the eigenvalue of the leading 2x2 block
    /// nearer its corner; z holds eigenvectors as rows and receives the rotations.
    /// </summary>
    private static void ImplicitQl(double[][] z, double[] d, double[] e, int n)
    {
        for (int i = 1; i < n; i++) e[i - 1] = e[i];
        e[n - 1] = 0;
        double f = 0, tst1 = 0, eps = Math.Pow(2, -52);
        for (int l = 0; l < n; l++)
        {
            tst1 = Math.Max(tst1, Math.Abs(d[l]) + Math.Abs(e[l]));
            int m = l;
            while (m < n - 1 && Math.Abs(e[m]) > eps * tst1) m++; // e[n-1] = 0 ends the search
            if (m > l)
            {
                int iter = 0;
                do
                {
                    if (++iter > 100) throw new InvalidOperationException($"symmetric_eigen: QL did not converge (n = {n})");
                    double g = d[l];
                    double p = (d[l + 1] - g) / (2 * e[l]);
                    double r = Hypot(p, 1);
                    if (p < 0) r = -r;
                    d[l] = e[l] / (p + r);
                    d[l + 1] = e[l] * (p + r);
                    double dl1 = d[l + 1];
                    double h = g - d[l];
                    for (int i = l + 2; i < n; i++) d[i] -= h;
                    f += h;

                    p = d[m];
                    double c = 1, c2 = c, c3 = c, el1 = e[l + 1], s = 0, s2 = 0;
                    for (int i = m - 1; i >= l; i--)
                    {
                        c3 = c2;
                        c2 = c;
                        s2 = s;
                        g = c * e[i];
                        h = c * p;
                        r = Hypot(p, e[i]);
                        e[i + 1] = s * r;
                        s = e[i] / r;
                        c = p / r;
                        p = c * d[i] - s * g;
                        d[i + 1] = h + s * (c * g + s * d[i]);
                        Rotate(z[i], z[i + 1], c, s, n);
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1;
                    e[l] = s * p;
                    d[l] = c * p;
                } while (Math.Abs(e[l]) > eps * tst1);
            }
            d[l] += f;
            e[l] = 0;
        }
    }

    /// <summary>(zi, zi1) = (c zi - s zi1, s zi + c zi1).</summary>
    private static void Rotate(double[] zi, double[] zi1, double c, double s, int n)
    {
        for (int k = 0; k < n; k++)
        {
            double h = zi1[k];
            zi1[k] = s * zi[k] + c * h;
            zi[k] = c * zi[k] - s * h;
        }
    }

    private static double Hypot(double a, double b)
    {
        a = Math.Abs(a);
        b = Math.Abs(b);
        if (a < b) (a, b) = (b, a);
        if (a == 0) return 0;
        double t = b / a;
        return a * Math.Sqrt(1 + t * t);
    }
}
