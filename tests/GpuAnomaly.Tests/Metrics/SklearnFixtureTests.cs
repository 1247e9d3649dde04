using System.Runtime.CompilerServices;
using System.Text.Json;
using GpuAnomaly.Models.Metrics;
using Xunit;

namespace GpuAnomaly.Tests.Metrics;

/// <summary>AUROC and FPR95 against scikit-learn (fixture from tools/export/metrics_fixture.py).</summary>
public class SklearnFixtureTests
{
    private static string FixturePath([CallerFilePath] string source = "") =>
        Path.Combine(Path.GetDirectoryName(source)!, "sklearn_roc_fixture.json");

    [Fact]
    public void AurocAndFpr95_MatchSklearn()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(FixturePath()));
        int k = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var scores = c.GetProperty("scores").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            var labels = c.GetProperty("labels").EnumerateArray().Select(v => v.GetInt32() != 0).ToArray();
            double auroc = c.GetProperty("auroc").GetDouble(), fpr95 = c.GetProperty("fpr95").GetDouble();
            Assert.True(Math.Abs(Roc.Auroc(scores, labels) - auroc) < 1e-12, $"case {k}: AUROC {Roc.Auroc(scores, labels)} vs sklearn {auroc}");
            Assert.True(Math.Abs(Roc.FprAtTpr(scores, labels, 0.95) - fpr95) < 1e-12, $"case {k}: FPR95 {Roc.FprAtTpr(scores, labels, 0.95)} vs sklearn {fpr95}");
            k++;
        }
        Assert.Equal(24, k);
    }
}
