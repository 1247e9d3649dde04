using GpuAnomaly.Models.Ood;
using Xunit;

namespace GpuAnomaly.Tests.Vim;

/// <summary>Every baseline score and the baseline fit on cases small enough to compute by hand (larger = more OOD).</summary>
public class OodBaselinesTests
{
    private const double Tol = 1e-12;

    [Fact]
    public void Msp_MaxLogit_Energy()
    {
        double[] l = [0, Math.Log(3)]; // softmax [1/4, 3/4]
        Assert.Equal(-0.75, OodBaselines.Msp(l), Tol);
        Assert.Equal(-5, OodBaselines.MaxLogit([1, 5, -2]), Tol);
        Assert.Equal(-Math.Log(4), OodBaselines.Energy(l), Tol);
        Assert.Equal(-(1000 + Math.Log(2)), OodBaselines.Energy([1000, 1000]), Tol); // stable for large logits
    }

    [Fact]
    public void EnergyReact_ClipsFeaturesBeforeTheHead()
    {
        // W = I, b = [0.5, 0]: x = [1, 10] clipped at 2 -> logits [1.5, 2].
        double score = OodBaselines.EnergyReact([1, 10], [1, 0, 0, 1], [0.5, 0], threshold: 2);
        Assert.Equal(-Math.Log(Math.Exp(1.5) + Math.Exp(2)), score, Tol);
        Assert.Throws<ArgumentException>(() => OodBaselines.EnergyReact([1, 10], [1, 0, 0], [0.5, 0], 2));
    }

    [Fact]
    public void Residual_IsTheNormOfTheProjectionOfXMinusOrigin()
    {
        double[] x = [3, 4, 5], o = [1, 1, 1];
        Assert.Equal(4, OodBaselines.Residual(x, o, [0, 0, 1]), Tol);
        Assert.Equal(Math.Sqrt(13), OodBaselines.Residual(x, o, [1, 0, 0, 0, 1, 0]), Tol);
    }

    [Fact]
    public void Nusa_IsMinusTheRowSpaceFraction()
    {
        // W's rows span e1, e2: x = [3, 4, 12] -> ||row-space part|| / ||x|| = 5 / 13.
        double[] w = [2, 0, 0, 1, 1, 0];
        var basis = PseudoInverse.RowSpaceBasis(w, 2, 3).SelectMany(r => r).ToArray();
        Assert.Equal(-5.0 / 13, OodBaselines.Nusa([3, 4, 12], basis), 1e-12);
        Assert.Equal(-1.0, OodBaselines.Nusa([3, 4, 0], basis), 1e-12);
    }

    [Fact]
    public void Mahalanobis_IsTheSmallestClassDistance()
    {
        double[] means = [0, 0, 10, 0], precision = [1, 0, 0, 4];
        Assert.Equal(5, OodBaselines.Mahalanobis([1, 1], means, precision), Tol); // class 0: 1 + 4; class 1: 81 + 4
        Assert.Equal(5, OodBaselines.Mahalanobis([9, 1], means, precision), Tol); // class 1: 1 + 4; class 0: 81 + 4
    }

    [Fact]
    public void KlMatching_IsTheSmallestDivergenceToATemplate()
    {
        double[] l = [0, 0]; // p = [1/2, 1/2]
        Assert.Equal(0, OodBaselines.KlMatching(l, [0.9, 0.1, 0.5, 0.5]), Tol);
        Assert.Equal(0.5 * Math.Log(2) + 0.5 * Math.Log(2.0 / 3), OodBaselines.KlMatching(l, [0.25, 0.75]), Tol);
    }

    [Fact]
    public void Quantile_InterpolatesLikeNumpy()
    {
        var a = Enumerable.Range(1, 101).Select(i => (float)i).Reverse().ToArray();
        Assert.Equal(100, OodBaselineFit.Quantile(a, 0.99), Tol);
        Assert.Equal(2.5, OodBaselineFit.Quantile([10f, 0f], 0.25), Tol);
    }

    [Fact]
    public void Fit_OnAHandDataset()
    {
        // Class 0: (0,0), (2,0); class 1: (10,2), (10,4). Means (1,0), (10,3); centered (-1,0), (1,0), (0,-1), (0,1):
        // covariance diag(0.5, 0.5). Head W = I, b = 0: logits = x, so every sample predicts class 0.
        float[] x = [0, 0, 2, 0, 10, 2, 10, 4];
        int[] labels = [0, 0, 1, 1];
        var fit = OodBaselineFit.Fit(x, labels, [1, 0, 0, 1], [0, 0]);
        Assert.Equal([1, 0, 10, 3], fit.ClassMeans);
        double p = 1 / (0.5 + 1e-6 * 0.5);
        Assert.Equal(p, fit.Precision[0], 1e-9);
        Assert.Equal(0, fit.Precision[1], 1e-9);
        Assert.Equal(p, fit.Precision[3], 1e-9);
        // 0.99 quantile of {0,0,2,0,10,2,10,4}: sorted 0,0,0,2,2,4,10,10, position 6.93 -> 10.
        Assert.Equal(10, fit.ReactThreshold, Tol);
        Assert.Equal(2, fit.RowSpaceRank);
        // All four samples predict class 0 ((0,0) ties, argmax keeps the first): one template, the mean softmax.
        Assert.Equal([0], fit.KlTemplateClasses);
        double[] mean = new double[2];
        foreach (var (a, b) in new[] { (0.0, 0.0), (2.0, 0.0), (10.0, 2.0), (10.0, 4.0) })
        {
            var s = OodBaselines.Softmax([a, b]);
            mean[0] += s[0] / 4;
            mean[1] += s[1] / 4;
        }
        Assert.Equal(mean[0], fit.KlTemplates[0], 1e-12);
        Assert.Equal(mean[1], fit.KlTemplates[1], 1e-12);
        // A sample at a class mean has Mahalanobis score 0.
        Assert.Equal(0, OodBaselines.Mahalanobis([10, 3], fit.ClassMeans, fit.Precision), 1e-9);
    }

    [Fact]
    public void Fit_RoundTripsThroughTensorsAndMetadata()
    {
        var rng = KernelLab.NewRng(out _);
        int n = 6, c = 3, s = 30;
        var labels = Enumerable.Range(0, s).Select(i => i % c).ToArray();
        var fit = OodBaselineFit.Fit(KernelLab.RandomFloats(rng, s * n), labels, KernelLab.RandomFloats(rng, c * n), KernelLab.RandomFloats(rng, c));
        var back = OodBaselineFit.FromTensors(fit.ToTensors(), fit.ToMetadataJson());
        Assert.Equal(fit.ReactThreshold, back.ReactThreshold);
        Assert.Equal(fit.KlTemplateClasses, back.KlTemplateClasses);
        Assert.Equal(fit.ClassMeans.Select(v => (double)(float)v), back.ClassMeans);
        Assert.Equal(fit.Precision.Select(v => (double)(float)v), back.Precision);
        Assert.Equal(fit.RowSpace.Select(v => (double)(float)v), back.RowSpace);
        Assert.Throws<ArgumentException>(() => OodBaselineFit.Fit(new float[6], [0, 2], [1, 0, 0, 1, 1, 1], [0, 0]));
    }
}

/// <summary>The all-scores entry point agrees with the fused kernel on the scores they share.</summary>
public class OodScoresTests
{
    [Fact]
    public void Compute_AgreesWithTheFusedKernel()
    {
        var rng = KernelLab.NewRng(out int seed);
        int n = 16, c = 4, s = 60;
        var x = KernelLab.RandomFloats(rng, s * n);
        var w = KernelLab.RandomFloats(rng, c * n);
        var b = KernelLab.RandomFloats(rng, c);
        var labels = Enumerable.Range(0, s).Select(i => i % c).ToArray();
        var vim = VimFit.Fit(x, s, w, b, c);
        var baselines = OodBaselineFit.Fit(x, labels, w, b);
        var p = GpuAnomaly.Kernels.Vim.VimParams.Create(1, n, c, vim.ResidualDim, (float)vim.Alpha);
        var y = new float[6];
        GpuAnomaly.Kernels.Vim.VimCpu.Forward(p, x.AsSpan(0, n), w, b, vim.Origin, vim.ResidualBasisT, y);
        var scores = OodScores.Compute(x.AsSpan(0, n), w, b, vim, baselines);
        Assert.True(Math.Abs(scores.Vim - y[1]) < 1e-5 * Math.Max(1, Math.Abs(y[1])), $"seed {seed}: vim {scores.Vim} vs kernel {y[1]}");
        Assert.True(Math.Abs(scores.VimProbability - y[0]) < 1e-5, $"seed {seed}: vim probability {scores.VimProbability} vs kernel {y[0]}");
        Assert.True(Math.Abs(scores.Msp + y[2]) < 1e-5, $"seed {seed}: msp");
        Assert.True(Math.Abs(scores.Energy + y[4]) < 1e-5 * Math.Max(1, Math.Abs(y[4])), $"seed {seed}: energy");
        Assert.Equal(OodScores.Names.Length, scores.ToArray().Length);
        Assert.All(scores.ToArray(), v => Assert.True(double.IsFinite(v), $"seed {seed}: a non-finite score"));
    }
}
