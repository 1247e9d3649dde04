using System.Text.Json;
using System.Text.Json.Nodes;
using GpuAnomaly.Cli;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine;
using GpuAnomaly.Models.Anomaly;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>
/// `predict --model X.onnx` on Anomalib-style exports (tools/export/onnx_anomaly_fixture.py): scores, labels and maps
/// equal to PyTorch's, both metadata layouts, and the errors of bad metadata / models.
/// </summary>
public sealed class PredictOnnxTests : IDisposable
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx_anomaly");
    private static readonly string Samples = Path.Combine(AppContext.BaseDirectory, "samples");
    private readonly string _dir = Directory.CreateTempSubdirectory("predict-onnx-").FullName;
    private int _models;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = GpuAnomalyCli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static JsonObject Expected(string model) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, model, "expected.json")))!.AsObject();

    [Theory]
    [InlineData("patchcore", "cpu")]
    [InlineData("single_output", "cpu")]
    [InlineData("patchcore", "ilgpu-cpu")]
    public void Predict_MatchesPyTorchScoresAndLabels(string model, string device)
    {
        var expected = Expected(model);
        // Batch 3 over 4 images: the last batch is padded.
        var images = expected.Select(kv => Path.Combine(Samples, kv.Key)).ToArray();
        var (code, stdout, stderr) = Run(["predict", .. images, "--model", Path.Combine(Fixtures, model, "model.onnx"), "--device", device,
            "--batch", "3", "--out", Path.Combine(_dir, "out")]);
        Assert.True(code == 0, stderr);
        Assert.DoesNotContain("no fitted score normalization", stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(images.Length, lines.Length);
        foreach (var line in lines)
        {
            var o = JsonNode.Parse(line)!.AsObject();
            var e = expected[Path.GetFileName(o["path"]!.GetValue<string>())]!;
            double raw = o["raw_score"]!.GetValue<double>(), want = e["raw_score"]!.GetValue<double>();
            Assert.True(Math.Abs(raw - want) <= 1e-5 * Math.Abs(want), $"{o["path"]}: raw score {raw}, PyTorch {want}");
            Assert.True(Math.Abs(o["pred_score"]!.GetValue<double>() - e["pred_score"]!.GetValue<double>()) <= 1e-4, $"{o["path"]}: {line} vs {e.ToJsonString()}");
            Assert.Equal(e["pred_label"]!.GetValue<string>(), o["pred_label"]!.GetValue<string>());
            Assert.True(File.Exists(o["heatmap"]!.GetValue<string>()));
        }
    }

    [Fact]
    public void Model_MapsEqualPyTorchs_NormalizedWithThePixelStatistics()
    {
        var expected = Expected("patchcore");
        using var dev = Device.Open("cpu");
        using var model = OnnxAnomalyModel.Load(Path.Combine(Fixtures, "patchcore", "model.onnx"), dev, expected.Count);
        Assert.Equal(new Shape(expected.Count, 1, 28, 28), model.InputShape);
        var batch = new float[model.InputShape.Elements];
        int i = 0;
        foreach (var (name, _) in expected) ImageFile.ToTensor(ImageFile.Load(Path.Combine(Samples, name), 1), 28, 28).CopyTo(batch, 784 * i++);
        var maps = model.Score(batch);
        Assert.All(maps.Map, v => Assert.True(float.IsFinite(v)));
        var post = new AnomalyPostProcessor(model.ImageScore!, model.PixelScore!);
        Assert.NotEqual(model.ImageScore, model.PixelScore);
        i = 0;
        foreach (var (name, e) in expected)
        {
            var r = post.Process(maps.Map.AsSpan(784 * i, 784), 28, 28, maps.ImageScores[i]);
            Assert.True(Math.Abs(r.AnomalyMap.Max() - e!["map_max"]!.GetValue<double>()) <= 1e-4, $"{name}: map max {r.AnomalyMap.Max()} vs {e["map_max"]}");
            i++;
        }
    }

    [Fact]
    public void Resize_HalfPixelBilinear_MatchesTheDefinition()
    {
        // 2x2 -> 4x4: the corners keep their values, the inner pixels blend 3:1.
        var dst = new float[16];
        GpuAnomaly.Models.MemoryBank.Bilinear.Resize([0f, 4f, 8f, 12f], 2, 2, dst, 4, 4);
        Assert.Equal([0f, 1f, 3f, 4f, 2f, 3f, 5f, 6f, 6f, 7f, 9f, 10f, 8f, 9f, 11f, 12f], dst);
    }

    private string CopyModel(string model, string? metadata)
    {
        string dir = Path.Combine(_dir, $"m{_models++}");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(Fixtures, model, "model.onnx"), Path.Combine(dir, "model.onnx"));
        if (metadata is not null) File.WriteAllText(Path.Combine(dir, "metadata.json"), metadata);
        return Path.Combine(dir, "model.onnx");
    }

    [Fact]
    public void Predict_WithoutMetadata_PrintsRawScores()
    {
        var (code, stdout, stderr) = Run("predict", Path.Combine(Samples, "normal_trouser_00.png"), "--model", CopyModel("patchcore", null),
            "--device", "cpu", "--out", Path.Combine(_dir, "out"));
        Assert.True(code == 0, stderr);
        Assert.Contains("no fitted score normalization", stderr);
        var o = JsonNode.Parse(stdout)!.AsObject();
        Assert.Null(o["pred_score"]);
        double want = Expected("patchcore")["normal_trouser_00.png"]!["raw_score"]!.GetValue<double>(), raw = o["raw_score"]!.GetValue<double>();
        Assert.True(Math.Abs(raw - want) <= 1e-5 * want, $"raw score {raw}, PyTorch {want}");
    }

    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("[1, 2]", "expected a JSON object")]
    [InlineData("{\"image_threshold\": \"high\", \"min\": 0, \"max\": 1}", "'image_threshold'")]
    [InlineData("{\"image_threshold\": 0.5, \"min\": 2, \"max\": 1}", "min 2 > max 1")]
    [InlineData("{\"image_threshold\": 1e60, \"min\": 0, \"max\": 1}", "finite float32")]
    [InlineData("{\"mean\": [0.5, 0.5, 0.5], \"std\": [0.2, 0.2, 0.2]}", "3 values for a 1-channel input")]
    [InlineData("{\"mean\": [0.5]}", "'mean' and 'std' go together")]
    [InlineData("{\"mean\": [0.5], \"std\": [0]}", "must be positive")]
    [InlineData("{\"input_size\": [32, 32]}", "the metadata's input_size says 32")]
    public void Predict_BadMetadata_ExitsTwoNamingTheFile(string metadata, string problem)
    {
        var (code, stdout, stderr) = Run("predict", Path.Combine(Samples, "normal_trouser_00.png"), "--model", CopyModel("patchcore", metadata),
            "--device", "cpu", "--out", Path.Combine(_dir, "out"));
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains(problem, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void Predict_ModelWithoutAnomalibOutputs_ExitsTwo()
    {
        // The importer fixtures' CNN: two outputs with other names.
        string cnn = Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx", "tiny_cnn.onnx");
        var (code, _, stderr) = Run("predict", Path.Combine(Samples, "normal_trouser_00.png"), "--model", cnn, "--device", "cpu", "--out", Path.Combine(_dir, "out"));
        Assert.Equal(2, code);
        Assert.Contains("tiny_cnn.onnx", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void Metadata_ReadsBothAnomalibLayoutsAndAlbumentations()
    {
        var v1 = AnomalibMetadata.Parse("m.json", JsonNode.Parse("""
            {"image_threshold": 3, "pixel_threshold": 4, "pred_scores.min": 1, "pred_scores.max": 5,
             "anomaly_maps.min": 0, "anomaly_maps.max": [9]}
            """)!.AsObject());
        Assert.Equal(new MinMaxNormalization(3, 1, 5), v1.ImageScore);
        Assert.Equal(new MinMaxNormalization(4, 0, 9), v1.PixelScore);
        var v0 = AnomalibMetadata.Parse("m.json", JsonNode.Parse("""
            {"image_threshold": 3, "pixel_threshold": 4, "min": 1, "max": 5,
             "transform": {"__version__": "1.3.0", "transform": {"__class_fullname__": "Compose", "transforms": [
               {"__class_fullname__": "Resize", "height": 64, "width": 48},
               {"__class_fullname__": "Normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "max_pixel_value": 255.0},
               {"__class_fullname__": "ToTensorV2"}]}}}
            """)!.AsObject());
        Assert.Equal(new MinMaxNormalization(3, 1, 5), v0.ImageScore);
        Assert.Equal(new MinMaxNormalization(4, 1, 5), v0.PixelScore);
        Assert.Equal([64, 48], v0.InputSize!);
        Assert.Equal([0.485f, 0.456f, 0.406f], v0.Mean!);
        Assert.Equal([0.229f, 0.224f, 0.225f], v0.Std!);
        var none = AnomalibMetadata.Parse("m.json", new JsonObject { ["task"] = "segmentation" });
        Assert.Null(none.ImageScore);
        Assert.Null(none.PixelScore);
    }

    [Fact]
    public void Model_AppliesTheMetadataMeanAndStd()
    {
        // (x - 0.25) / 0.5 fed to the model equals the plain model on those values.
        string plain = CopyModel("patchcore", null), normalized = CopyModel("patchcore", "{\"mean\": [0.25], \"std\": [0.5]}");
        using var dev = Device.Open("cpu");
        using var a = OnnxAnomalyModel.Load(plain, dev, 2);
        using var b = OnnxAnomalyModel.Load(normalized, dev, 2);
        var rng = KernelLab.NewRng(out int seed);
        var x = new float[a.InputShape.Elements];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle();
        var viaMetadata = b.Score(x);
        var direct = a.Score(x.Select(v => (v - 0.25f) / 0.5f).ToArray());
        Assert.True(KernelLab.RelL2(viaMetadata.Map, Array.ConvertAll(direct.Map, v => (double)v)) <= 1e-6, $"seed {seed}");
        Assert.Equal(direct.ImageScores, viaMetadata.ImageScores);
    }

    [Fact]
    public void Fit_WritesMetadataThatPredictUses_KeepingTheTransform()
    {
        string model = CopyModel("patchcore", "{\"task\": \"segmentation\", \"mean\": [0.1], \"std\": [0.9]}");
        string data = Path.Combine(_dir, "data");
        var names = Directory.GetFiles(Samples, "*.png").Order(StringComparer.Ordinal).ToList();
        foreach (var (folder, files) in new[] { ("train/good", names.Where(n => Path.GetFileName(n).StartsWith("normal_")).Take(8)),
                     ("test/good", names.Where(n => Path.GetFileName(n).StartsWith("normal_")).Skip(8).Take(4)),
                     ("test/bag", names.Where(n => Path.GetFileName(n).StartsWith("anomalous_bag")).Take(4)) })
        {
            Directory.CreateDirectory(Path.Combine(data, folder));
            foreach (var f in files) File.Copy(f, Path.Combine(data, folder, Path.GetFileName(f)));
        }
        string metadata = Path.Combine(Path.GetDirectoryName(model)!, "metadata.json");
        var (code, stdout, stderr) = Run("fit", "--data", data, "--model", model, "--out", metadata, "--device", "cpu");
        Assert.True(code == 0, stderr);
        Assert.Contains("image threshold", stdout);
        var written = AnomalibMetadata.Load(metadata);
        Assert.NotNull(written.ImageScore);
        Assert.Equal([0.1f], written.Mean!);
        Assert.Equal([0.9f], written.Std!);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(model)!, "*.tmp"));

        (code, stdout, stderr) = Run("predict", Path.Combine(data, "test"), "--model", model, "--device", "cpu", "--out", Path.Combine(_dir, "out"));
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(8, lines.Count);
        Assert.All(lines, o => Assert.InRange(o["pred_score"]!.GetValue<double>(), 0, 1));
        // The threshold is the raw score that normalizes to 0.5.
        foreach (var o in lines)
            Assert.Equal(o["raw_score"]!.GetValue<double>() > written.ImageScore!.Threshold, o["pred_label"]!.GetValue<string>() == "anomalous");
    }
}
