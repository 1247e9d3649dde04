using System.Text.Json;
using GpuAnomaly.Cli;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.MemoryBank;
using Xunit;

namespace GpuAnomaly.Tests.MemoryBank;

public class MemoryBankModelTests
{
    private static MemoryBankConfig Config(ImageAggregation agg, double sigma = 4) =>
        new(1, 12, 10, [new FeatureSource(FeatureSource.Pixels, 4, 2, 0.7, 0)], false, 0.5, agg, 3, sigma, null, null, null, null, null);

    /// <summary>Patch scores, image scores (all three aggregations) and maps against a brute-force float64 scoring of the same tokens.</summary>
    [Theory]
    [InlineData(ImageAggregation.Mean)]
    [InlineData(ImageAggregation.Max)]
    [InlineData(ImageAggregation.MaxReweighted)]
    public void Score_MatchesBruteForce(ImageAggregation agg)
    {
        var rng = KernelLab.NewRng(out int seed);
        using var dev = new CpuDevice();
        var config = Config(agg);
        int b = 3;
        using var builder = new MemoryBankBuilder(config, null, dev, b);
        for (int i = 0; i < 3; i++) builder.Add(KernelLab.RandomFloats(rng, b * 120), b);
        var (bank, rows, report) = builder.Build(0.5, (ulong)seed);
        int d = report.Dims;
        Assert.Equal((int)Math.Round(0.5 * builder.TrainingTokens), rows);
        var neighbors = MemoryBankBuilder.Neighbors(dev, bank, rows, d, config.ReweightNeighbors);
        using var model = MemoryBankModel.Create(config, null, bank, rows, neighbors, dev, b);
        var x = KernelLab.RandomFloats(rng, b * 120);
        var (patch, nearest, tokens) = model.PatchScores(x);
        var scored = model.Score(x);
        int t = model.Features.Tokens;
        for (int q = 0; q < patch.Length; q++)
        {
            var dist = Enumerable.Range(0, rows).Select(r => Dist(tokens.AsSpan(q * d, d), bank.AsSpan(r * d, d))).ToArray();
            double min = dist.Min();
            Assert.True(Math.Abs(patch[q] - min) <= 1e-4 * Math.Max(1, min), $"seed {seed}: token {q} score {patch[q]} vs {min}");
            Assert.True(dist[nearest[q]] - min <= 1e-4 * Math.Max(1, min), $"seed {seed}: token {q} nearest row {nearest[q]}");
        }
        for (int n = 0; n < b; n++)
        {
            var s = patch.AsSpan(n * t, t).ToArray();
            int at = Array.IndexOf(s, s.Max());
            double expected = agg switch
            {
                ImageAggregation.Mean => s.Average(v => (double)v),
                ImageAggregation.Max => s[at],
                _ => Reweighted(tokens.AsSpan((n * t + at) * d, d), bank, d, neighbors, nearest[n * t + at], config.ReweightNeighbors, s[at]),
            };
            Assert.True(Math.Abs(scored.ImageScores[n] - expected) <= 1e-4 * Math.Max(1, expected), $"seed {seed}: image {n} {scored.ImageScores[n]} vs {expected}");
            var map = new float[12 * 10];
            PatchCoreScoring.Map(s, model.Features.GridH, model.Features.GridW, map, 12, 10, config.MapSigma);
            Assert.Equal(map, scored.Map.AsSpan(n * 120, 120).ToArray());
        }
    }

    private static double Dist(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return Math.Sqrt(s);
    }

    private static double Reweighted(ReadOnlySpan<float> token, float[] bank, int d, int[] neighbors, int nearest, int b, double best)
    {
        var nd = new double[b];
        for (int j = 0; j < b; j++) nd[j] = Dist(token, bank.AsSpan(neighbors[nearest * b + j] * d, d));
        Assert.Equal(nearest, neighbors[nearest * b]); // a row is its own nearest neighbour (no duplicate rows here)
        return (1 - Math.Exp(nd[0]) / nd.Sum(Math.Exp)) * best;
    }

    [Fact]
    public void Coreset_CoversEveryTrainingTokenWithinTheReportedRadius()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var dev = new CpuDevice();
        var config = Config(ImageAggregation.Mean);
        using var builder = new MemoryBankBuilder(config, null, dev, 4);
        builder.Add(KernelLab.RandomFloats(rng, 4 * 120), 4);
        builder.Add(KernelLab.RandomFloats(rng, 4 * 120), 3);
        var all = builder.CollectedTokens();
        var (bank, rows, report) = builder.Build(0.25, 7);
        int d = report.Dims, n = (int)builder.TrainingTokens;
        double radius = 0;
        for (int i = 0; i < n; i++)
            radius = Math.Max(radius, Enumerable.Range(0, rows).Min(r => Dist(all.AsSpan(i * d, d), bank.AsSpan(r * d, d))));
        Assert.True(Math.Abs(report.CoverageRadius - radius) <= 1e-4 * radius, $"seed {seed}: radius {report.CoverageRadius} vs {radius}");
        // Deterministic for a seed.
        var again = builder.Build(0.25, 7);
        Assert.Equal(bank, again.Bank);
    }

    [Fact]
    public void Append_MovesNearRowsAndAddsFarTokensUntilCovered()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var dev = new CpuDevice();
        int d = 5, rows = 6;
        var bank = KernelLab.RandomFloats(rng, rows * d);
        // One token right next to row 2, three far away (two of them close to each other).
        var tokens = new float[4 * d];
        for (int j = 0; j < d; j++)
        {
            tokens[j] = bank[2 * d + j] + 0.01f;
            tokens[d + j] = 50 + j;
            tokens[2 * d + j] = 50.001f + j;
            tokens[3 * d + j] = -40 - j;
        }
        var (grown, newRows, moved, added) = MemoryBankBuilder.Append(dev, bank, rows, d, tokens, 4, radius: 0.5, momentum: 0.75f);
        Assert.Equal((1, 2, rows + 2), (moved, added, newRows));
        for (int j = 0; j < d; j++)
        {
            // A tolerance, not decimal places: rounding both to 5 places failed once on a 1-ulp difference that
            // straddled a rounding boundary (0.877925038 vs 0.877924979).
            Assert.Equal(0.75f * bank[2 * d + j] + 0.25f * tokens[j], grown[2 * d + j], 1e-6f);
            Assert.Equal(bank[0 * d + j], grown[j]); // untouched rows stay
        }
        // The farthest far token comes first (k-center: token 2, 50.001 + j, a hair beyond its twin token 1), then
        // the other cluster; token 1 is within the radius of token 2 and is not added.
        Assert.Equal(tokens.AsSpan(2 * d, d).ToArray(), grown.AsSpan(rows * d, d).ToArray());
        Assert.Equal(tokens.AsSpan(3 * d, d).ToArray(), grown.AsSpan((rows + 1) * d, d).ToArray());
        Assert.True(seed != int.MinValue);
    }

    [Fact]
    public void HostileBank_IsRejectedNamingTheTensor()
    {
        string dir = Directory.CreateTempSubdirectory("mb-bad-").FullName;
        try
        {
            var config = Config(ImageAggregation.Mean);
            int d = 4 * 4 + 2, rows = 4;
            var bank = new float[rows * d];
            for (int i = 0; i < bank.Length; i++) bank[i] = i * 0.1f;
            using var dev = new CpuDevice();
            string good = Path.Combine(dir, "good.safetensors");
            MemoryBankBuilder.Write(good, config, bank, rows, d, [0, 1, 2, 1, 0, 2, 2, 1, 3, 3, 2, 1], null);
            using (var m = MemoryBankModel.Load(good, dev, 1)) Assert.Equal(rows, m.BankRows);

            bank[5] = float.NaN;
            string nan = Path.Combine(dir, "nan.safetensors");
            MemoryBankBuilder.Write(nan, config, bank, rows, d, [0, 1, 2, 1, 0, 2, 2, 1, 3, 3, 2, 1], null);
            Assert.Contains("'bank'", Assert.Throws<SafetensorsException>(() => MemoryBankModel.Load(nan, dev, 1)).Message);

            bank[5] = 0;
            string idx = Path.Combine(dir, "idx.safetensors");
            MemoryBankBuilder.Write(idx, config, bank, rows, d, [0, 1, 2, 1, 0, 2, 2, 1, 3, 3, 2, 9], null);
            Assert.Contains("bank_neighbors", Assert.Throws<SafetensorsException>(() => MemoryBankModel.Load(idx, dev, 1)).Message);

            string wide = Path.Combine(dir, "wide.safetensors");
            MemoryBankBuilder.Write(wide, config, new float[rows * (d + 1)], rows, d + 1, [0, 1, 2, 1, 0, 2, 2, 1, 3, 3, 2, 1], null);
            Assert.Contains("bank", Assert.Throws<SafetensorsException>(() => MemoryBankModel.Load(wide, dev, 1)).Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>fit --method memory-bank -> eval -> predict -> fit --append on a small synthetic Folder dataset.</summary>
    [Fact]
    public void FitMemoryBank_ThenEvalPredictAndAppend()
    {
        string root = Directory.CreateTempSubdirectory("mb-fit-").FullName;
        try
        {
            var rng = KernelLab.NewRng(out int seed);
            void Write(string rel, Func<int, int, byte> pixel)
            {
                string path = Path.Combine(root, rel);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                var rgb = new byte[28 * 28 * 3];
                for (int y = 0; y < 28; y++)
                    for (int x = 0; x < 28; x++)
                        rgb[(y * 28 + x) * 3] = rgb[(y * 28 + x) * 3 + 1] = rgb[(y * 28 + x) * 3 + 2] = pixel(x, y);
                ImageFile.WritePng(path, rgb, 28, 28);
            }
            byte Smooth(int x, int y) => (byte)(60 + 5 * x + rng.Next(6));
            for (int i = 0; i < 20; i++) Write($"train/good/{i:D2}.png", Smooth);
            for (int i = 0; i < 6; i++) Write($"test/good/{i}.png", Smooth);
            for (int i = 0; i < 6; i++)
            {
                Write($"test/noise/{i}.png", (x, y) => x is >= 8 and < 18 && y is >= 8 and < 18 ? (byte)rng.Next(256) : Smooth(x, y));
                Write($"ground_truth/noise/{i}_mask.png", (x, y) => x is >= 8 and < 18 && y is >= 8 and < 18 ? (byte)255 : (byte)0);
            }
            string model = Path.Combine(root, "mb.safetensors");
            var o = new StringWriter();
            var e = new StringWriter();
            Assert.True(GpuAnomalyCli.Run(["fit", "--method", "memory-bank", "--data", root, "--out", model, "--device", "cpu"], o, e) == 0, $"seed {seed}: {o}{e}");
            Assert.Contains("memory bank:", o.ToString());
            using (var f = SafetensorsFile.Open(model))
            {
                Assert.Equal("memory_bank", f.Metadata["architecture"]);
                Assert.Contains("\"coverage_radius\"", f.Metadata["config"]);
                Assert.Contains("\"threshold\"", f.Metadata["config"]);
            }

            string json = Path.Combine(root, "metrics.json");
            o = new StringWriter();
            Assert.True(GpuAnomalyCli.Run(["eval", "--data", root, "--model", model, "--device", "cpu", "--json", json], o, e) == 0, $"{o}{e}");
            using (var metrics = JsonDocument.Parse(File.ReadAllText(json)))
            {
                Assert.True(metrics.RootElement.GetProperty("image_auroc").GetDouble() > 0.9, $"seed {seed}: {File.ReadAllText(json)}");
                Assert.InRange(metrics.RootElement.GetProperty("pixel_auroc").GetDouble(), 0.5, 1.0);
                Assert.Equal("memory_bank", metrics.RootElement.GetProperty("architecture").GetString());
            }

            o = new StringWriter();
            Assert.Equal(0, GpuAnomalyCli.Run(["predict", Path.Combine(root, "test"), "--model", model, "--device", "cpu", "--out", Path.Combine(root, "out")], o, e));
            var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(12, lines.Length);
            int anomalous = 0;
            foreach (var line in lines)
            {
                using var doc = JsonDocument.Parse(line);
                Assert.InRange(doc.RootElement.GetProperty("pred_score").GetSingle(), 0f, 1f);
                if (doc.RootElement.GetProperty("path").GetString()!.Contains("noise") && doc.RootElement.GetProperty("pred_label").GetString() == "anomalous") anomalous++;
            }
            Assert.True(anomalous >= 5, $"seed {seed}: {anomalous} of 6 noisy images flagged\n{o}");

            // Append the noisy images as if they were normal: they are far from the bank, so rows are added.
            string grown = Path.Combine(root, "mb2.safetensors");
            o = new StringWriter();
            Assert.True(GpuAnomalyCli.Run(["fit", "--append", Path.Combine(root, "test", "noise"), "--model", model, "--out", grown, "--device", "cpu"], o, e) == 0, $"{o}{e}");
            Assert.Matches(@"bank (\d+) -> (\d+) rows", o.ToString());
            var m = System.Text.RegularExpressions.Regex.Match(o.ToString(), @"bank (\d+) -> (\d+) rows");
            Assert.True(int.Parse(m.Groups[2].Value) > int.Parse(m.Groups[1].Value), o.ToString());
            using var dev = new CpuDevice();
            using var before = MemoryBankModel.Load(model, dev, 6);
            using var after = MemoryBankModel.Load(grown, dev, 6);
            var batch = new float[6 * 28 * 28];
            for (int i = 0; i < 6; i++)
                ImageFile.ToTensor(ImageFile.Load(Path.Combine(root, "test", "noise", $"{i}.png"), 1), 28, 28).CopyTo(batch, i * 784);
            var s0 = before.Score(batch).ImageScores;
            var s1 = after.Score(batch).ImageScores;
            for (int i = 0; i < 6; i++) Assert.True(s1[i] < 0.5f * s0[i], $"seed {seed}: image {i} score {s0[i]} -> {s1[i]} after appending it");

            // --append without a memory-bank model, and a bad ratio: exit 2 with a message.
            e = new StringWriter();
            Assert.Equal(2, GpuAnomalyCli.Run(["fit", "--method", "memory-bank", "--data", root, "--out", model, "--coreset", "1.5", "--device", "cpu"], new StringWriter(), e));
            Assert.Contains("--coreset", e.ToString());
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
