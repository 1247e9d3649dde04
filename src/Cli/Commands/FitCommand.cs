using System.CommandLine;
using System.Text.Json.Nodes;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Anomaly;
using GpuAnomaly.Models.StudentTeacher;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly fit --data DIR --model IN --out OUT`: fits Anomalib's min-max normalization of image scores
/// (and of maps, with pixel masks) on a dataset and writes a new model file with them in its config. The
/// test split is used when it has anomalous images (F1-adaptive threshold), else train/good (normal-only:
/// the threshold is the highest normal score). The output is written atomically: never half a file.
/// </summary>
internal static class FitCommand
{
    public static Command Create(CliOutput output)
    {
        var data = new Option<string>("--data") { Description = "Dataset folder (Anomalib Folder/MVTec layout)", Required = true };
        var model = new Option<string>("--model", "-m") { Description = "The model file to fit", DefaultValueFactory = _ => PredictCommand.DefaultModel };
        var outFile = new Option<string>("--out", "-o") { Description = "The fitted model file to write", Required = true };
        var device = CommonOptions.Device();
        var batch = new Option<int>("--batch") { Description = "Images per device batch", DefaultValueFactory = _ => 32 };
        var cmd = new Command("fit", "Fit the score normalization and thresholds on a dataset; write a new model file.") { data, model, outFile, device, batch };
        cmd.SetAction(r =>
        {
            var dataset = AnomalyFolder.Open(r.GetValue(data)!);
            bool useTest = dataset.Test.Any(s => s.IsAnomalous);
            var split = useTest ? dataset.Test : dataset.Train;
            if (split.Count == 0) throw new DatasetLayoutException($"{dataset.Root}: no images to fit on");
            string modelPath = r.GetValue(model)!;
            using var dev = Device.Open(r.GetValue(device)!);
            DatasetScores scores;
            using (var st = StudentTeacherModel.Load(modelPath, dev, Math.Min(Math.Max(1, r.GetValue(batch)), split.Count)))
                scores = DatasetScores.Compute(st, split, output);
            if (scores.ImageScores.Length == 0) throw new DatasetLayoutException($"{dataset.Root}: no image could be decoded");

            var image = MinMaxNormalization.Fit(scores.ImageScores, scores.Labels);
            var pixel = scores.Masks is { } masks && masks.Any(m => m) ? MinMaxNormalization.Fit(scores.Maps, masks) : null;

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
