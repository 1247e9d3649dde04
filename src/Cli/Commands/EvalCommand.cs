using System.CommandLine;
using System.Text.Json;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine;
using GpuAnomaly.Models.Metrics;
using GpuAnomaly.Models.Anomaly;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly eval --data DIR`: scores the test split and prints image AUROC, F1, FPR at 95% TPR and,
/// when the dataset has masks, pixel AUROC and AUPRO (FPR <= 0.3); optionally writes them as JSON.
/// </summary>
internal static class EvalCommand
{
    public static Command Create(CliOutput output)
    {
        var data = new Option<string>("--data") { Description = "Dataset folder (Anomalib Folder/MVTec layout)", Required = true };
        var model = new Option<string>("--model", "-m") { Description = "Model file", DefaultValueFactory = _ => PredictCommand.DefaultModel };
        var device = CommonOptions.Device();
        var json = new Option<FileInfo?>("--json") { Description = "Also write the metrics as JSON to this file" };
        var batch = CommonOptions.Batch(32);
        var cmd = new Command("eval", "Evaluate a model on a dataset's test split: AUROC, F1, FPR95, pixel AUROC, AUPRO.") { data, model, device, json, batch };
        cmd.SetAction(r =>
        {
            var dataset = AnomalyFolder.Open(r.GetValue(data)!);
            if (!dataset.Test.Any(s => s.IsAnomalous) || !dataset.Test.Any(s => !s.IsAnomalous))
                throw new DatasetLayoutException($"{dataset.Root}: the test split needs both test/good and test/<defect> images");
            using var dev = Device.Open(r.GetValue(device)!);
            using var st = AnomalyModel.Load(r.GetValue(model)!, dev, Math.Min(Math.Max(1, r.GetValue(batch)), dataset.Test.Count));
            var s = DatasetScores.Compute(st, dataset.Test, output);

            var metrics = new Dictionary<string, object?>
            {
                ["model"] = r.GetValue(model),
                ["architecture"] = st.Architecture,
                ["data"] = dataset.Root,
                ["device"] = dev.Name,
                ["images"] = s.ImageScores.Length,
                ["anomalous"] = s.Labels.Count(l => l),
                ["skipped"] = s.Skipped,
                ["image_auroc"] = Roc.Auroc(s.ImageScores, s.Labels),
                ["image_fpr_at_95_tpr"] = Roc.FprAtTpr(s.ImageScores, s.Labels, 0.95),
            };
            if (st.ImageScore is { } norm)
            {
                var normalized = s.ImageScores.Select(norm.Normalize).ToArray();
                metrics["image_f1"] = F1Score.Compute(normalized, s.Labels, 0.5f); // the fitted threshold maps to 0.5
            }
            else
            {
                float t = F1AdaptiveThreshold.Fit(s.ImageScores, s.Labels);
                metrics["image_f1_optimal"] = F1Score.Compute(s.ImageScores, s.Labels, t, inclusive: true);
            }
            if (s.Masks is { } masks && masks.Any(m => m) && masks.Any(m => !m))
            {
                metrics["pixel_auroc"] = Roc.Auroc(s.Maps, masks);
                metrics["pixel_aupro_0.3"] = Aupro.Compute(s.Maps, masks, s.Width, s.Height, s.ImageScores.Length);
            }

            var table = new Table().AddColumns("metric", "value");
            foreach (var (k, v) in metrics)
                table.AddRow(Markup.Escape(k), Markup.Escape(v is double d ? d.ToString("F4") : v?.ToString() ?? "-"));
            InfoCommand.Console(output.Out).Write(table);
            if (r.GetValue(json) is { } file)
                File.WriteAllText(file.FullName, JsonSerializer.Serialize(metrics, new JsonSerializerOptions { WriteIndented = true }));
            return s.Skipped == 0 ? 0 : GpuAnomalyCli.ExitBadInput;
        });
        return cmd;
    }
}
