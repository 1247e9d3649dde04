using System.CommandLine;
using System.Text.Json;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine;
using GpuAnomaly.Models;
using GpuAnomaly.Models.Anomaly;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly predict [IMAGES or DIRS]`: the main job. Scores images with an anomaly model (memory_bank or uninformed_students)
/// (the bundled default when none is given, on the bundled sample images when no image is given), prints
/// one JSON line per image and writes a heat-map panel PNG per image (input | overlay | mask | colour bar, see
/// <see cref="HeatMapPanel"/>); with --report, one HTML page of the whole run (<see cref="PredictReport"/>). Undecodable images are reported
/// and skipped; the exit code is then 2, after every other image has been processed.
/// </summary>
internal static class PredictCommand
{
    /// <summary>The bundled memory-bank model (Fashion-MNIST Trouser normal; image AUROC 98.8 against 87.1 of the Uninformed Students model it replaced).</summary>
    public static string DefaultModel => BundledModels.PathOf(BundledModels.MemoryBankDefault);
    /// <summary>The bundled Uninformed Students model: its teacher gives `teacher:SCALE` memory-bank features.</summary>
    public static string StudentTeacherModel => BundledModels.PathOf(BundledModels.UninformedStudentsDefault);
    public static string SampleImages => Path.Combine(AppContext.BaseDirectory, "samples");

    public static Command Create(CliOutput output)
    {
        var inputs = new Argument<string[]>("inputs") { Description = "Image files or folders (default: the bundled sample images)", Arity = ArgumentArity.ZeroOrMore }.NotAnOption();
        var model = new Option<string>("--model", "-m") { Description = "A model file: memory_bank or uninformed_students (.safetensors), or an anomaly model exported to ONNX (.onnx, with Anomalib's metadata.json beside it)", DefaultValueFactory = _ => DefaultModel };
        var device = CommonOptions.Device();
        var outDir = new Option<string>("--out", "-o") { Description = "Folder for the heat-map panels", DefaultValueFactory = _ => "gpuanomaly-out" };
        // Zero or one value: a bare --report takes the next word as its path when one follows, so write it last or as --report=PATH.
        var report = new Option<string?>("--report") { Description = "Also write an HTML page of the run (default path: OUT/report.html)", Arity = ArgumentArity.ZeroOrOne };
        var batch = CommonOptions.Batch(16);
        var cmd = new Command("predict", "Score images: one JSON line each (score, label, boxes) and a heat-map panel PNG.") { inputs, model, device, outDir, report, batch };
        cmd.SetAction(r =>
        {
            int failed = 0, done = 0, skipped = 0;
            // Entries the walk passes over (link loops, FIFOs, broken links) are not bad images: a warning, exit 0.
            var files = ImageWalk.Files(r.GetValue(inputs) is { Length: > 0 } given ? given : [SampleImages],
                skip => { output.Error.WriteLine($"warning: {GpuAnomalyCli.OneLine(skip)}"); skipped++; });
            if (files.Count == 0) throw new ImageDecodeException(string.Join(", ", r.GetValue(inputs) ?? []), "no PNG, JPEG or BMP images found");
            int batchSize = r.GetValue(batch);
            string outPath = r.GetValue(outDir)!;
            var heatMaps = OutputNames.Map(files, outPath, "_heatmap.png");
            Directory.CreateDirectory(outPath);
            string? reportPath = r.GetResult(report) is null ? null
                : r.GetValue(report) is { Length: > 0 } named ? named : Path.Combine(outPath, "report.html");
            var rows = new List<ReportRow>();

            using var dev = Device.Open(r.GetValue(device)!);
            using var st = AnomalyModel.Load(r.GetValue(model)!, dev, Math.Min(batchSize, files.Count));
            var post = st.ImageScore is { } image ? new AnomalyPostProcessor(image, st.PixelScore ?? image) : null;
            if (post is null) output.Error.WriteLine("warning: the model has no fitted score normalization (run 'gpuanomaly fit'); printing raw scores only");

            int c = st.InputShape[1], h = st.InputShape[2], w = st.InputShape[3];
            var scorer = new BatchScorer(st);
            void Score(Action<int> advance)
            {
                foreach (var s in scorer.Score(files, e => { output.Error.WriteLine($"error: {GpuAnomalyCli.OneLine(e.Message)} (skipped)"); failed++; }, advance))
                {
                    var line = new Dictionary<string, object?> { ["path"] = s.Path };
                    float[] heat;
                    float? predScore = null;
                    string? label = null;
                    if (post is not null)
                    {
                        var res = post.Process(s.Map, w, h, s.RawScore);
                        line["pred_score"] = res.PredScore;
                        line["pred_label"] = res.PredLabel ? "anomalous" : "normal";
                        line["raw_score"] = s.RawScore;
                        line["boxes"] = res.Boxes.Select(x => new[] { x.X0, x.Y0, x.X1, x.Y1 }).ToArray();
                        heat = res.AnomalyMap;
                        predScore = res.PredScore;
                        label = res.PredLabel ? "anomalous" : "normal";
                    }
                    else
                    {
                        // Unfitted: the map stretched to its own range, for the picture only.
                        line["raw_score"] = s.RawScore;
                        float lo = s.Map.Min(), hi = s.Map.Max();
                        heat = s.Map.Select(v => hi > lo ? (v - lo) / (hi - lo) : 0f).ToArray();
                    }
                    string png = heatMaps[s.Path];
                    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(png))!);
                    var pixels = ImageFile.ToTensor(s.Image, h, w).Select(v => (byte)Math.Clamp(MathF.Round(v * 255f), 0, 255)).ToArray();
                    var panel = HeatMapPanel.Compose(heat, pixels, w, h, c);
                    ImageFile.WritePng(png, panel.Rgb, panel.Width, panel.Height);
                    line["heatmap"] = png;
                    rows.Add(new ReportRow(s.Path, png, s.RawScore, predScore, label));
                    output.Out.WriteLine(JsonSerializer.Serialize(line));
                    done++;
                }
            }
            // A progress bar on the terminal when there are many images; plain output otherwise (pipes, tests).
            if (files.Count > st.InputShape[0] && output.Error == Console.Error && !Console.IsErrorRedirected)
                AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }).Progress()
                    .Start(ctx => { var task = ctx.AddTask("scoring", maxValue: files.Count); Score(n => task.Increment(n)); });
            else Score(_ => { });
            if (reportPath is not null)
            {
                string modelPath = r.GetValue(model)!;
                PredictReport.Write(reportPath, rows, $"{Path.GetFileName(modelPath)} ({st.Architecture})", dev.Name, post?.Image.Threshold);
                output.Error.WriteLine($"report: {reportPath}");
            }
            output.Error.WriteLine($"{done} images scored on {dev.Name}, {failed} failed, {skipped} skipped; heat maps in {outPath}");
            return failed == 0 ? 0 : GpuAnomalyCli.ExitBadInput;
        });
        return cmd;
    }
}
