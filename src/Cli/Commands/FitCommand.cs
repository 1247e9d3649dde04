using System.CommandLine;
using System.Text.Json.Nodes;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Anomaly;
using GpuAnomaly.Models.MemoryBank;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly fit --method memory-bank --data DIR --out OUT` builds a memory-bank model (<see cref="MemoryBankFit"/>);
/// `gpuanomaly fit --append DIR --model M --out M2` grows one. `gpuanomaly fit --data DIR --model IN --out OUT`: fits Anomalib's min-max normalization of image scores
/// (and of maps, with pixel masks) on a dataset and writes a new model file with them in its config. The
/// test split is used when it has anomalous images (F1-adaptive threshold), else train/good (normal-only:
/// the threshold is the highest normal score). The output is written atomically: never half a file. For an ONNX
/// model (`--model X.onnx`) the output is Anomalib's metadata.json (the existing one's other keys kept): `--out` it
/// beside the model to use it.
/// </summary>
internal static class FitCommand
{
    public static Command Create(CliOutput output)
    {
        var data = new Option<string?>("--data") { Description = "Dataset folder (Anomalib Folder/MVTec layout)" };
        var model = new Option<string>("--model", "-m") { Description = "The model file to fit (or to append to)", DefaultValueFactory = _ => PredictCommand.DefaultModel };
        var outFile = new Option<string>("--out", "-o") { Description = "The model file to write", Required = true };
        var device = CommonOptions.Device();
        var batch = CommonOptions.Batch(32);
        var method = new Option<string>("--method") { Description = "normalization: fit the score normalization of --model; memory-bank: build a PatchCore-style model from DIR/train/good", DefaultValueFactory = _ => "normalization" };
        method.AcceptOnlyFromAmong("normalization", "memory-bank");
        var features = new Option<string?>("--features") { Description = "memory-bank: comma-separated feature sources, pixels:PATCH/STRIDE[/BLUR] and teacher:SCALE[/STRIDE] (default: pixels:20/8/1 at 28x28, scaled with the image; pixels:8/4/1 above 64 px)" };
        var coreset = new Option<double>("--coreset") { Description = "memory-bank: the fraction of training patches kept by the greedy k-center coreset (1 keeps all; default: all up to 65,536 patches, else the larger of 10% and 65,536)", DefaultValueFactory = _ => 0 };
        var holdout = new Option<double>("--holdout") { Description = "memory-bank: the fraction of train/good held out of the bank to fit the normalization and threshold", DefaultValueFactory = _ => 0.1 };
        var teacher = new Option<string?>("--teacher") { Description = "memory-bank: the uninformed_students model whose teacher gives teacher:SCALE features (default: the bundled one)" };
        var position = new Option<double>("--position-weight") { Description = "memory-bank: weight of the two position channels (0: none); aligned images match patches from about the same place", DefaultValueFactory = _ => 1.0 };
        var imageScore = new Option<string>("--image-score") { Description = "memory-bank: image score from the patch scores: max_reweighted (PatchCore), max or mean", DefaultValueFactory = _ => "mean" };
        imageScore.AcceptOnlyFromAmong("max_reweighted", "max", "mean");
        var local = new Option<bool>("--locally-aware") { Description = "memory-bank: average each patch feature over its 3x3 neighbourhood (PatchCore)", DefaultValueFactory = _ => false };
        var seed = new Option<ulong>("--seed") { Description = "memory-bank: seed of the held-out split, the coreset projection and its first pick", DefaultValueFactory = _ => 0 };
        var channels = new Option<int>("--channels") { Description = "memory-bank: 1 or 3 input channels (0: 1 when the first training image is gray)", DefaultValueFactory = _ => 0 };
        var normalClass = new Option<int?>("--normal-class") { Description = "memory-bank: recorded in the config (Fashion-MNIST one-vs-rest runs)" };
        var append = new Option<string?>("--append") { Description = "Add the normal images of this folder (or its train/good) to the memory bank of --model" };
        var momentum = new Option<float>("--momentum") { Description = "append: a new patch within the coverage radius moves its nearest row to m * row + (1 - m) * patch", DefaultValueFactory = _ => 0.9f };
        var cmd = new Command("fit", "Fit the score normalization of a model, build a memory-bank model (--method memory-bank) or grow one (--append); write a new model file.")
        {
            data, model, outFile, device, batch, method, features, coreset, holdout, teacher, position, imageScore, local, seed, channels, normalClass, append, momentum,
        };
        cmd.SetAction(r =>
        {
            int batchSize = r.GetValue(batch);
            if (batchSize < 1) throw new UsageException($"--batch {batchSize} must be at least 1");
            if (r.GetValue(append) is { } appendDir)
            {
                if (r.GetValue(model) == PredictCommand.DefaultModel && AnomalyModel.ArchitectureOf(PredictCommand.DefaultModel) != MemoryBankConfig.Architecture)
                    throw new UsageException("--append needs --model, a memory_bank model file");
                using var adev = Device.Open(r.GetValue(device)!);
                return MemoryBankFit.Append(output, appendDir, r.GetValue(model)!, r.GetValue(outFile)!, r.GetValue(momentum), adev, batchSize);
            }
            if (r.GetValue(data) is not { } dataDir) throw new UsageException("--data DIR is required (or --append DIR --model M)");
            if (r.GetValue(method) == "memory-bank")
            {
                var opts = new MemoryBankFitOptions(r.GetValue(features), r.GetValue(coreset), r.GetValue(holdout), r.GetValue(teacher),
                    r.GetValue(position), r.GetValue(imageScore)!, r.GetValue(local), r.GetValue(seed), r.GetValue(channels), r.GetValue(normalClass));
                if (!(opts.Coreset >= 0 && opts.Coreset <= 1)) throw new UsageException($"--coreset {opts.Coreset} must be in (0, 1] (0: automatic)");
                if (!(opts.Holdout > 0 && opts.Holdout < 1)) throw new UsageException($"--holdout {opts.Holdout} must be in (0, 1)");
                if (!(opts.PositionWeight >= 0) || !double.IsFinite(opts.PositionWeight)) throw new UsageException($"--position-weight {opts.PositionWeight} must be >= 0");
                if (opts.Channels is not (0 or 1 or 3)) throw new UsageException($"--channels {opts.Channels}: expected 0, 1 or 3");
                using var mdev = Device.Open(r.GetValue(device)!);
                return MemoryBankFit.Build(output, AnomalyFolder.Open(dataDir), r.GetValue(outFile)!, opts, mdev, batchSize);
            }
            var dataset = AnomalyFolder.Open(dataDir);
            bool useTest = dataset.Test.Any(s => s.IsAnomalous);
            var split = useTest ? dataset.Test : dataset.Train;
            if (split.Count == 0) throw new DatasetLayoutException($"{dataset.Root}: no images to fit on");
            string modelPath = r.GetValue(model)!;
            using var dev = Device.Open(r.GetValue(device)!);
            DatasetScores scores;
            string arch;
            using (var st = AnomalyModel.Load(modelPath, dev, Math.Min(batchSize, split.Count)))
            {
                arch = st.Architecture;
                scores = DatasetScores.Compute(st, split, output);
            }
            if (scores.ImageScores.Length == 0) throw new DatasetLayoutException($"{dataset.Root}: no image could be decoded");

            var image = MinMaxNormalization.Fit(scores.ImageScores, scores.Labels);
            var pixel = scores.Masks is { } masks && masks.Any(m => m) ? MinMaxNormalization.Fit(scores.Maps, masks)
                // A memory bank's maps (patch distances) and image scores are on different scales: fit the maps too
                // (an ONNX model's maps may be anything: the same).
                : arch is MemoryBankConfig.Architecture or OnnxAnomalyModel.ArchitectureName && !useTest ? MinMaxNormalization.Fit(scores.Maps, new bool[scores.Maps.Length]) : null;

            if (AnomalyModel.IsOnnx(modelPath))
                AnomalibMetadataWriter.Write(r.GetValue(outFile)!, AnomalibMetadata.Beside(modelPath), image, pixel,
                    $"{dataset.Root} ({(useTest ? "test" : "train/good")}, {scores.ImageScores.Length} images)");
            else
            using (var src = SafetensorsFile.Open(modelPath))
            {
                var meta = src.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
                var config = JsonNode.Parse(meta["config"])!.AsObject();
                config["image_score"] = Json(image);
                config["pixel_score"] = pixel is null ? null : Json(pixel);
                config["fitted_on"] = $"{dataset.Root} ({(useTest ? "test" : "train/good")}, {scores.ImageScores.Length} images)";
                meta["config"] = config.ToJsonString();
                var tensors = src.Tensors.Select(t => new SafetensorsTensor(t.Name, t.DTypeTag, [.. t.Shape], src.ReadBytes(t.Name))).ToList();
                SafetensorsWriter.Write(r.GetValue(outFile)!, tensors, meta);
            }
            output.Out.WriteLine($"fitted on {scores.ImageScores.Length} images ({(useTest ? "test split, F1-adaptive threshold" : "train/good, normal-only threshold")}, {scores.Skipped} skipped): " +
                $"image threshold {image.Threshold:G6}, min {image.Min:G6}, max {image.Max:G6}" +
                (pixel is null ? "; maps use the image normalization (no pixel masks)" : $"; pixel threshold {pixel.Threshold:G6}") +
                $" -> {r.GetValue(outFile)}");
            return scores.Skipped == 0 ? 0 : GpuAnomalyCli.ExitBadInput;
        });
        return cmd;
    }

    private static JsonObject Json(MinMaxNormalization n) => new() { ["min"] = n.Min, ["max"] = n.Max, ["threshold"] = n.Threshold };
}
