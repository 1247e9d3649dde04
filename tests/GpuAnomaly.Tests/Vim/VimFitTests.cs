using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Kernels.Vim;
using GpuAnomaly.Models.Ood;
using Xunit;

namespace GpuAnomaly.Tests.Vim;

/// <summary>pinv, the ViM fit (properties, serialization) and parity with the numpy fixture of tools/export/check_vim.py.</summary>
public class VimFitTests
{
    [Theory]
    [InlineData(3, 7)]
    [InlineData(10, 64)]
    [InlineData(9, 4)]
    [InlineData(1, 1)]
    [InlineData(6, 6)]
    public void Pinv_SatisfiesPenroseConditions(int rows, int cols)
    {
        var rng = KernelLab.NewRng(out int seed);
        var w = KernelLab.RandomFloats(rng, rows * cols).Select(v => (double)v).ToArray();
        var p = PseudoInverse.Compute(w, rows, cols); // [cols, rows]
        var wpw = MatMul(MatMul(w, p, rows, cols, rows), w, rows, rows, cols);
        var pwp = MatMul(MatMul(p, w, cols, rows, cols), p, cols, cols, rows);
        Assert.True(RelDiff(wpw, w) < 1e-9, $"seed {seed}: W pinv(W) W != W ({RelDiff(wpw, w):E2})");
        Assert.True(RelDiff(pwp, p) < 1e-9, $"seed {seed}: pinv(W) W pinv(W) != pinv(W) ({RelDiff(pwp, p):E2})");
    }

    [Fact]
    public void Pinv_OfRankDeficientMatrix()
    {
        // Rows 0 and 2 equal: rank 2 of 3 rows.
        double[] w = [1, 2, 3, 4, 0, 1, -1, 2, 1, 2, 3, 4];
        var p = PseudoInverse.Compute(w, 3, 4);
        var wpw = MatMul(MatMul(w, p, 3, 4, 3), w, 3, 3, 4);
        Assert.True(RelDiff(wpw, w) < 1e-9, $"W pinv(W) W != W ({RelDiff(wpw, w):E2})");
        Assert.Equal(2, PseudoInverse.RowSpaceBasis(w, 3, 4).Length);
    }

    [Fact]
    public void DefaultPrincipalDim_FollowsTheOfficialRule()
    {
        Assert.Equal(1000, VimFit.DefaultPrincipalDim(2048));
        Assert.Equal(512, VimFit.DefaultPrincipalDim(768));
        Assert.Equal(512, VimFit.DefaultPrincipalDim(1024));
        Assert.Equal(383, VimFit.DefaultPrincipalDim(767));
        Assert.Equal(32, VimFit.DefaultPrincipalDim(64));
    }

    [Fact]
    public void Fit_GivesOriginBasisAndAlphaWithTheirDefiningProperties()
    {
        var rng = KernelLab.NewRng(out int seed);
        int n = 24, c = 5, s = 200;
        var x = KernelLab.RandomFloats(rng, s * n);
        var w = KernelLab.RandomFloats(rng, c * n);
        var b = KernelLab.RandomFloats(rng, c);
        var fit = VimFit.Fit(x, s, w, b, c, principalDim: 10);
        Assert.Equal(14, fit.ResidualDim);
        // W o = -b (W has full row rank).
        for (int i = 0; i < c; i++)
        {
            double wo = 0;
            for (int j = 0; j < n; j++) wo += (double)w[i * n + j] * fit.Origin[j];
            Assert.True(Math.Abs(wo + b[i]) < 1e-5, $"seed {seed}: (W o)[{i}] = {wo}, -b = {-b[i]}");
        }
        // Residual rows orthonormal; eigenvalues descending.
        for (int i = 0; i < fit.ResidualDim; i++)
            for (int j = 0; j < fit.ResidualDim; j++)
            {
                double dot = 0;
                for (int t = 0; t < n; t++) dot += (double)fit.ResidualBasisT[i * n + t] * fit.ResidualBasisT[j * n + t];
                Assert.True(Math.Abs(dot - (i == j ? 1 : 0)) < 1e-6, $"seed {seed}: Rt rows {i}, {j}: {dot}");
            }
        for (int i = 1; i < n; i++) Assert.True(fit.Eigenvalues[i - 1] >= fit.Eigenvalues[i]);
        // alpha * mean r = mean max logit, by definition, on the training set (scored by the kernel).
        var p = VimParams.Create(s, n, c, fit.ResidualDim, (float)fit.Alpha);
        var y = new float[p.OutputElements];
        VimCpu.Forward(p, x, w, b, fit.Origin, fit.ResidualBasisT, y);
        double sumMax = 0, sumR = 0;
        for (int i = 0; i < s; i++) { sumMax += y[i * 6 + VimParams.MaxLogit]; sumR += y[i * 6 + VimParams.Residual]; }
        Assert.True(Math.Abs(fit.Alpha * sumR / sumMax - 1) < 1e-5, $"seed {seed}: alpha {fit.Alpha}, mean r {sumR / s}, mean max logit {sumMax / s}");
        Assert.Throws<ArgumentException>(() => VimFit.Fit(x, s, w, b, c, principalDim: n));
    }

    [Fact]
    public void FitResult_RoundTripsThroughTensorsAndMetadata()
    {
        var rng = KernelLab.NewRng(out _);
        int n = 12, c = 3, s = 40;
        var fit = VimFit.Fit(KernelLab.RandomFloats(rng, s * n), s, KernelLab.RandomFloats(rng, c * n), KernelLab.RandomFloats(rng, c), c);
        var back = VimFitResult.FromTensors(fit.ToTensors(), fit.ToMetadataJson());
        Assert.Equal(fit.Alpha, back.Alpha);
        Assert.Equal(fit.PrincipalDim, back.PrincipalDim);
        Assert.Equal(fit.Origin, back.Origin);
        Assert.Equal(fit.ResidualBasisT, back.ResidualBasisT);
        var tensors = new Dictionary<string, (float[] Data, int[] Shape)>(fit.ToTensors());
        tensors["vim.residual_basis_t"] = (new float[5], [5]);
        var ex = Assert.Throws<ArgumentException>(() => VimFitResult.FromTensors(tensors, fit.ToMetadataJson()));
        Assert.Contains("vim.residual_basis_t", ex.Message);
        Assert.Throws<ArgumentException>(() => VimFitResult.FromTensors(fit.ToTensors(), "{\"vim.alpha\":\"1\"}"));
    }

    /// <summary>VimFit + VimCpu reproduce the numpy (official formula) scores of the committed fixture.</summary>
    [Fact]
    public void Fixture_MatchesNumpy()
    {
        using var f = SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "Fixtures", "vim_fixture.safetensors"));
        var train = f.ReadFloat32("train_features");
        var test = f.ReadFloat32("test_features");
        var w = f.ReadFloat32("weight");
        var b = f.ReadFloat32("bias");
        int n = f["weight"].Shape[1], c = b.Length, sTrain = train.Length / n, sTest = test.Length / n;
        int d = int.Parse(f.Metadata["principal_dim"]);
        Assert.Equal(d, VimFit.DefaultPrincipalDim(n));
        var fit = VimFit.Fit(train, sTrain, w, b, c);
        double alpha = double.Parse(f.Metadata["alpha"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(fit.Alpha / alpha - 1) < 1e-9, $"alpha {fit.Alpha} vs numpy {alpha}");
        KernelLab.AssertClose(fit.Origin, f.ReadFloat32("origin").Select(v => (double)v).ToArray(), 1e-5, "origin");

        var p = VimParams.Create(sTest, n, c, fit.ResidualDim, (float)fit.Alpha);
        var y = VimCase.Poisoned(p.OutputElements);
        VimCpu.Forward(p, test, w, b, fit.Origin, fit.ResidualBasisT, y);
        foreach (var (name, col) in new[] { ("vim_score", VimParams.VimScore), ("vim_probability", VimParams.VimProbability),
            ("residual", VimParams.Residual), ("energy", VimParams.Energy), ("max_logit", VimParams.MaxLogit), ("msp", VimParams.Msp) })
        {
            var expected = f.ReadFloat32(name).Select(v => (double)v).ToArray();
            var actual = Enumerable.Range(0, sTest).Select(i => y[i * VimParams.Outputs + col]).ToArray();
            KernelLab.AssertClose(actual, expected, 1e-5, $"fixture {name}");
        }
    }

    internal static double[] MatMul(double[] a, double[] b, int m, int k, int n)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int t = 0; t < k; t++)
                for (int j = 0; j < n; j++) c[i * n + j] += a[i * k + t] * b[t * n + j];
        return c;
    }

    private static double RelDiff(double[] a, double[] b) =>
        Math.Sqrt(a.Zip(b, (x, y) => (x - y) * (x - y)).Sum() / b.Sum(v => v * v));
}
