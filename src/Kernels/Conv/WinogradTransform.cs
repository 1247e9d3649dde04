namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// The matrices of Winograd's minimal filtering algorithm F(m, r) (Lavin and Gray 2016, "Fast Algorithms for
/// Convolutional Neural Networks"): m outputs of an r-tap correlation y_i = sum_k g_k d_(i+k) from a = m + r - 1
/// inputs with a multiplications, y = A^T [(G g) . (B^T d)]; in 2-D, Y = A^T [(G g G^T) . (B^T D B)] A.
/// Built from Toom-Cook interpolation points (0, 1, -1, 2, -2, ... and infinity) in float64: the linear convolution
/// s = g * h evaluates g and h at the points, multiplies, and interpolates (Lagrange, plus the leading coefficient
/// from the point at infinity); the correlation is its transpose. The 1/prod(p_j - p_l) factors go into G, so B and
/// A stay integral.
/// </summary>
public sealed class WinogradTransform
{
    private static readonly double[] Points = [0, 1, -1, 2, -2, 0.5, -0.5];

    public WinogradTransform(int m, int r)
    {
        if (m < 1 || r < 1 || m + r - 1 > Points.Length + 1)
            throw new ArgumentException($"winograd F({m}, {r}): tiles of {m + r - 1} inputs are outside 1..{Points.Length + 1}");
        M = m;
        R = r;
        int a = Alpha, nf = a - 1;
        var p = Points.AsSpan(0, nf);
        AT = new double[m, a];
        G = new double[a, r];
        BT = new double[a, a];
        for (int j = 0; j < nf; j++)
        {
            double f = 1;
            for (int l = 0; l < nf; l++)
                if (l != j) f *= p[j] - p[l];
            for (int i = 0; i < m; i++) AT[i, j] = Math.Pow(p[j], i);
            for (int k = 0; k < r; k++) G[j, k] = Math.Pow(p[j], k) / f;
            // Row j of B^T: the coefficients of prod_(l != j) (x - p_l), lowest power first.
            var c = Coefficients(p, skip: j);
            for (int t = 0; t < c.Length; t++) BT[j, t] = c[t];
        }
        AT[m - 1, nf] = 1;
        G[nf, r - 1] = 1;
        var all = Coefficients(p, skip: -1);
        for (int t = 0; t < all.Length; t++) BT[nf, t] = all[t];
    }

    public int M { get; }
    public int R { get; }
    /// <summary>Inputs per tile side: m + r - 1.</summary>
    public int Alpha => M + R - 1;
    /// <summary>[m, alpha]: tile products to outputs.</summary>
    public double[,] AT { get; }
    /// <summary>[alpha, r]: filter to the transformed filter.</summary>
    public double[,] G { get; }
    /// <summary>[alpha, alpha]: input tile to the transformed tile.</summary>
    public double[,] BT { get; }

    private static double[] Coefficients(ReadOnlySpan<double> roots, int skip)
    {
        var c = new double[roots.Length + 1];
        c[0] = 1;
        int degree = 0;
        for (int l = 0; l < roots.Length; l++)
        {
            if (l == skip) continue;
            // c(x) *= (x - root)
            for (int t = degree + 1; t >= 1; t--) c[t] = c[t - 1] - roots[l] * c[t];
            c[0] = -roots[l] * c[0];
            degree++;
        }
        return c;
    }

    /// <summary>The 1-D algorithm in float64: m outputs of the correlation of g (r taps) with d (alpha inputs).</summary>
    public double[] Correlate1D(ReadOnlySpan<double> g, ReadOnlySpan<double> d)
    {
        int a = Alpha;
        var y = new double[M];
        for (int j = 0; j < a; j++)
        {
            double gj = 0, dj = 0;
            for (int k = 0; k < R; k++) gj += G[j, k] * g[k];
            for (int t = 0; t < a; t++) dj += BT[j, t] * d[t];
            for (int i = 0; i < M; i++) y[i] += AT[i, j] * gj * dj;
        }
        return y;
    }

    /// <summary>U = G g G^T of an r x r filter (row-major), alpha x alpha row-major.</summary>
    public void TransformFilter(ReadOnlySpan<float> g, Span<double> u)
    {
        int a = Alpha;
        Span<double> gt = stackalloc double[a * R];
        for (int i = 0; i < a; i++)
        for (int kx = 0; kx < R; kx++)
        {
            double s = 0;
            for (int ky = 0; ky < R; ky++) s += G[i, ky] * g[ky * R + kx];
            gt[i * R + kx] = s;
        }
        for (int i = 0; i < a; i++)
        for (int j = 0; j < a; j++)
        {
            double s = 0;
            for (int kx = 0; kx < R; kx++) s += gt[i * R + kx] * G[j, kx];
            u[i * a + j] = s;
        }
    }
}
