using GpuAnomaly.Engine;
using GpuAnomaly.Models.Ood;
using GpuAnomaly.Models.WindowVit;
using Xunit;

namespace GpuAnomaly.Tests.Ood;

/// <summary>
/// The OOD pipeline as `fit-ood` / `ood` run it: fit on features from the bundled window_vit model, write the fits into a
/// model file, load it back, and check that the detector (fused vim_score op on the device + host baselines) gives the
/// float64 reference's scores (<see cref="OodScores.Compute"/>) with the documented sign (larger = more OOD).
/// </summary>
public sealed class OodDetectorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpuanomaly-ood-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void FitWriteLoadScore_MatchesTheFloat64Reference()
    {
        var rng = KernelLab.NewRng(out int seed);
        string model = Path.Combine(AppContext.BaseDirectory, "models", "window_vit_fmnist.safetensors");
        using var device = new CpuDevice();
        const int train = 120, test = 7;
        float[] Images(int n) => KernelLab.RandomFloats(rng, n * 28 * 28).Select(v => (v + 1) / 2).ToArray();

        float[] features;
        using (var vit = WindowVitModel.Load(model, device, train))
            features = vit.Run(Images(train)).Features;
        var labels = Enumerable.Range(0, train).Select(i => i % 10).ToArray();
        var (vim, baselines) = OodDetector.Fit(model, features, labels);
        int n = features.Length / train; // the bundled model's feature size
        Assert.Equal(n / 2, vim.PrincipalDim); // N < 768: N / 2
        string fitted = Path.Combine(_dir, "fitted.safetensors");
        OodDetector.WriteFitted(model, fitted, vim, baselines, "random images");

        using var det = OodDetector.Load(fitted, device, test);
        var images = Images(test);
        var results = det.Run(images, test);
        var raw = det.Model.Run(images);
        using var file = GpuAnomaly.Engine.Weights.SafetensorsFile.Open(fitted);
        var (headW, headB) = WindowVitModel.HeadWeights(file);
        for (int i = 0; i < test; i++)
        {
            var expected = OodScores.Compute(raw.Features.AsSpan(i * n, n), headW, headB, det.Vim, det.Baselines).ToArray();
            var actual = results[i].Scores.ToArray();
            for (int k = 0; k < expected.Length; k++)
            {
                double tol = 1e-4 * Math.Max(1, Math.Abs(expected[k]));
                Assert.True(Math.Abs(actual[k] - expected[k]) <= tol,
                    $"seed {seed}, image {i}, {OodScores.Names[k]}: detector {actual[k]} vs float64 reference {expected[k]}");
            }
            Assert.InRange(results[i].PredictedClass, 0, 9);
        }
    }
}
