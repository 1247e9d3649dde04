using System.CommandLine;
using System.Text.Json;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine;
using GpuAnomaly.Models;
using GpuAnomaly.Models.Metrics;
using GpuAnomaly.Models.Ood;
using GpuAnomaly.Models.WindowVit;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// Out-of-distribution detection with a window_vit classifier (issue 6):
/// `fit-ood --model M --data DIR --out M2` fits ViM and the baselines on in-distribution training images
/// (DIR/&lt;class id&gt;/*.png, class ids as in the model's config), `ood --model M2 IMAGES` prints every score per image,
/// `eval-ood --model M2 --id DIR --ood DIR...` prints AUROC and FPR at 95% TPR of every score per OOD set.
/// </summary>
internal static class OodCommands
{
    public static string DefaultModel => BundledModels.PathOf(BundledModels.WindowVitFashionMnist);

    public static Command FitOod(CliOutput output)
    {
        var model = new Option<string>("--model", "-m") { Description = "A window_vit model file", DefaultValueFactory = _ => DefaultModel };
        var data = new Option<string>("--data") { Description = "In-distribution training images: one subfolder per class, named by its class id", Required = true };
        var outFile = new Option<string>("--out", "-o") { Description = "The fitted model file to write", Required = true };
        var dim = new Option<int?>("--principal-dim") { Description = "ViM's principal dimension D (default: the official rule)" };
        var device = CommonOptions.Device();
        var batch = CommonOptions.Batch(64);
        var cmd = new Command("fit-ood", "Fit ViM and the OOD baselines on in-distribution training images; write a new model file.")
            { model, data, outFile, dim, device, batch };
        cmd.SetAction(r =>
        {
            string modelPath = r.GetValue(model)!, root = r.GetValue(data)!;
            if (!Directory.Exists(root)) throw new DatasetLayoutException($"{root}: no such folder");
            using var dev = Device.Open(r.GetValue(device)!);
            using var vit = WindowVitModel.Load(modelPath, dev, Math.Max(1, r.GetValue(batch)));
            var classes = vit.Config.Classes.Count > 0 ? vit.Config.Classes : [.. Enumerable.Range(0, vit.Config.NumClasses)];
            var files = new List<(string Path, int Label)>();
            foreach (var sub in Directory.GetDirectories(root).Order(StringComparer.Ordinal))
            {
                string name = Path.GetFileName(sub);
                int index = int.TryParse(name, out int id) ? classes.ToList().IndexOf(id) : -1;
                if (index < 0)
                    throw new DatasetLayoutException($"{sub}: the folder name is not one of the model's class ids ({string.Join(", ", classes)})");
                files.AddRange(ImageFolder.Images(sub, output).Select(f => (f, index)));
            }
            if (files.Count == 0) throw new DatasetLayoutException($"{root}: no images in class subfolders");
            var (features, labels, skipped) = Featurize(vit, files, output);
            if (labels.Length <= vit.Config.EmbedDim)
                throw new DatasetLayoutException($"{root}: {labels.Length} images for {vit.Config.EmbedDim}-dimensional features; fitting needs more images than feature dimensions");
            VimFitResult vim;
            OodBaselineFit baselines;
            try { (vim, baselines) = OodDetector.Fit(modelPath, features, labels, r.GetValue(dim)); }
            catch (ArgumentException e) { throw new DatasetLayoutException($"{root}: cannot fit: {e.Message}"); }
            OodDetector.WriteFitted(modelPath, r.GetValue(outFile)!, vim, baselines, $"{root} ({labels.Length} images)");
            output.Out.WriteLine($"fitted on {labels.Length} images ({skipped} skipped): ViM D = {vim.PrincipalDim} of N = {vim.FeatureDim}, " +
                $"alpha = {vim.Alpha:G6}; ReAct threshold {baselines.ReactThreshold:G6}; {baselines.MeanCount} class means -> {r.GetValue(outFile)}");
            return skipped == 0 ? 0 : GpuAnomalyCli.ExitBadInput;
        });
        return cmd;
    }

    public static Command Ood(CliOutput output)
    {
        var inputs = new Argument<string[]>("IMAGES") { Description = "Image files or folders", Arity = ArgumentArity.OneOrMore }.NotAnOption();
        var model = new Option<string>("--model", "-m") { Description = "A window_vit model fitted by fit-ood", Required = true };
        var device = CommonOptions.Device();
        var batch = CommonOptions.Batch(64);
        var cmd = new Command("ood", "Score images for out-of-distribution detection: one JSON line each with every score (larger = more OOD).")
            { inputs, model, device, batch };
        cmd.SetAction(r =>
        {
            var files = r.GetValue(inputs)!.SelectMany(i => Directory.Exists(i) ? ImageFolder.Images(i, output) : [i]).ToList();
            using var dev = Device.Open(r.GetValue(device)!);
            using var det = OodDetector.Load(r.GetValue(model)!, dev, Math.Max(1, Math.Min(r.GetValue(batch), files.Count)));
            int failed = 0;
            foreach (var (path, result) in Score(det, files, e => { output.Error.WriteLine($"error: {GpuAnomalyCli.OneLine(e.Message)} (skipped)"); failed++; }, _ => { }))
            {
                var line = new Dictionary<string, object> { ["path"] = path, ["predicted_class"] = result.PredictedClass };
                var values = result.Scores.ToArray();
                for (int i = 0; i < values.Length; i++) line[OodScores.Names[i]] = values[i];
                output.Out.WriteLine(JsonSerializer.Serialize(line));
            }
            return failed == 0 ? 0 : GpuAnomalyCli.ExitBadInput;
        });
        return cmd;
    }

    public static Command EvalOod(CliOutput output)
    {
        var model = new Option<string>("--model", "-m") { Description = "A window_vit model fitted by fit-ood", Required = true };
        var id = new Option<string>("--id") { Description = "In-distribution test images (folder, searched recursively)", Required = true };
        var ood = new Option<string[]>("--ood") { Description = "An OOD test folder; repeat for several sets", Required = true, AllowMultipleArgumentsPerToken = true };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the metrics as JSON to this file" };
        var device = CommonOptions.Device();
        var batch = CommonOptions.Batch(64);
        var cmd = new Command("eval-ood", "AUROC and FPR at 95% TPR of every OOD score: in-distribution test images against OOD sets.")
            { model, id, ood, json, device, batch };
        cmd.SetAction(r =>
        {
            using var dev = Device.Open(r.GetValue(device)!);
            using var det = OodDetector.Load(r.GetValue(model)!, dev, Math.Max(1, r.GetValue(batch)));
            int failed = 0;
            List<OodResult> Run(string folder)
            {
                var files = ImageFolder.Images(folder, output).ToList();
                if (files.Count == 0) throw new DatasetLayoutException($"{folder}: no images");
                return Score(det, files, e => { output.Error.WriteLine($"error: {GpuAnomalyCli.OneLine(e.Message)} (skipped)"); failed++; }, _ => { })
                    .Select(x => x.Result).ToList();
            }
            var idScores = Run(r.GetValue(id)!);
            // Classification accuracy when the in-distribution folder has class-id subfolders (the files' order is Run's).
            int correct = 0, labelled = 0;
            var idFiles = ImageFolder.Images(r.GetValue(id)!, output).ToList();
            if (failed == 0 && idFiles.Count == idScores.Count)
                for (int i = 0; i < idFiles.Count; i++)
                    if (int.TryParse(Path.GetFileName(Path.GetDirectoryName(idFiles[i])), out int truth))
                    {
                        labelled++;
                        if (idScores[i].PredictedClass == truth) correct++;
                    }
            double? accuracy = labelled == idFiles.Count && labelled > 0 ? (double)correct / labelled : null;
            var report = new List<object>();
            var table = new Table().AddColumns(["OOD set", .. OodScores.Names]);
            foreach (string set in r.GetValue(ood)!)
            {
                var oodScores = Run(set);
                // OOD is the positive class and every score grows with OOD-ness; FPR95 is the fraction of OOD images
                // accepted at the threshold that keeps 95% of in-distribution images (the OOD papers' FPR@95%TPR).
                var labels = idScores.Select(_ => false).Concat(oodScores.Select(_ => true)).ToArray();
                var cells = new List<string> { Markup.Escape($"{Path.GetFileName(Path.TrimEndingDirectorySeparator(set))} ({oodScores.Count})") };
                var metrics = new Dictionary<string, object>();
                for (int k = 0; k < OodScores.Names.Length; k++)
                {
                    var s = idScores.Concat(oodScores).Select(x => (float)x.Scores.ToArray()[k]).ToArray();
                    double auroc = Roc.Auroc(s, labels);
                    var idPositive = labels.Select(l => !l).ToArray();
                    var negated = s.Select(v => -v).ToArray();
                    double fpr95 = Roc.FprAtTpr(negated, idPositive, 0.95);
                    cells.Add($"{100 * auroc:F1} / {100 * fpr95:F1}");
                    metrics[OodScores.Names[k]] = new { auroc, fpr_at_95_tpr = fpr95 };
                }
                table.AddRow(cells.ToArray());
                report.Add(new { ood = set, images = oodScores.Count, metrics });
            }
            var console = InfoCommand.Console(output.Out);
            console.WriteLine($"model {Path.GetFileName(r.GetValue(model)!)} on {dev.Name}: {idScores.Count} in-distribution images" +
                (accuracy is { } acc ? $", classification accuracy {100 * acc:F2}%" : "") + "; cells: AUROC / FPR at 95% TPR (%)");
            console.Write(table);
            if (r.GetValue(json) is { } f)
                File.WriteAllText(f.FullName, JsonSerializer.Serialize(new { model = r.GetValue(model), id = r.GetValue(id), id_images = idScores.Count, accuracy, sets = report },
                    new JsonSerializerOptions { WriteIndented = true }));
            return failed == 0 ? 0 : GpuAnomalyCli.ExitBadInput;
        });
        return cmd;
    }

    /// <summary>Features [S, N] and labels of labelled image files, in device batches with a progress bar on a terminal.</summary>
    private static (float[] Features, int[] Labels, int Skipped) Featurize(WindowVitModel vit, List<(string Path, int Label)> files, CliOutput output)
    {
        int b = vit.InputShape[0], c = vit.Config.InChannels, h = vit.Config.Height, w = vit.Config.Width, n = vit.Config.EmbedDim;
        var features = new List<float>();
        var labels = new List<int>();
        int skipped = 0;
        void Work(Action<int> advance)
        {
            for (int start = 0; start < files.Count; start += b)
            {
                var batch = new float[b * c * h * w];
                var kept = new List<int>();
                for (int i = start; i < Math.Min(start + b, files.Count); i++)
                {
                    try
                    {
                        ImageFile.ToTensor(ImageFile.Load(files[i].Path, c), h, w).CopyTo(batch, kept.Count * c * h * w);
                        kept.Add(files[i].Label);
                    }
                    catch (ImageDecodeException e)
                    {
                        output.Error.WriteLine($"error: {GpuAnomalyCli.OneLine(e.Message)} (skipped)");
                        skipped++;
                    }
                }
                var o = vit.Run(batch);
                features.AddRange(o.Features.AsSpan(0, kept.Count * n).ToArray());
                labels.AddRange(kept);
                advance(Math.Min(b, files.Count - start));
            }
        }
        Progress(output, files.Count, "features", Work);
        return ([.. features], [.. labels], skipped);
    }

    private static IEnumerable<(string Path, OodResult Result)> Score(OodDetector det, List<string> files, Action<ImageDecodeException> onError, Action<int> advance)
    {
        var m = det.Model;
        int b = m.InputShape[0], c = m.Config.InChannels, h = m.Config.Height, w = m.Config.Width;
        var pending = new List<string>();
        var batch = new float[b * c * h * w];
        foreach (var f in files)
        {
            try
            {
                ImageFile.ToTensor(ImageFile.Load(f, c), h, w).CopyTo(batch, pending.Count * c * h * w);
                pending.Add(f);
            }
            catch (ImageDecodeException e) { onError(e); }
            if (pending.Count == b)
            {
                foreach (var x in Finite(pending.Zip(det.Run(batch, pending.Count)))) yield return x;
                advance(pending.Count);
                pending.Clear();
            }
        }
        if (pending.Count > 0)
            foreach (var x in Finite(pending.Zip(det.Run(batch, pending.Count)))) yield return x;
    }

    /// <summary>Scores as they come, refusing NaN and infinity (not valid JSON; they break every AUROC).</summary>
    private static IEnumerable<(string Path, OodResult Result)> Finite(IEnumerable<(string Path, OodResult Result)> scored)
    {
        foreach (var (path, result) in scored)
        {
            var values = result.Scores.ToArray();
            for (int i = 0; i < values.Length; i++)
                if (!double.IsFinite(values[i])) throw new NonFiniteOutputException($"{OodScores.Names[i]} score", path, (float)values[i]);
            yield return (path, result);
        }
    }

    private static void Progress(CliOutput output, int total, string what, Action<Action<int>> work)
    {
        if (output.Error == Console.Error && !Console.IsErrorRedirected)
            AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }).Progress()
                .Start(ctx => { var task = ctx.AddTask(what, maxValue: total); work(n => task.Increment(n)); });
        else work(_ => { });
    }
}

/// <summary>The image files under a folder, recursively, in ordinal order (<see cref="ImageWalk"/>: no link loops, no FIFOs); skips are warned about.</summary>
internal static class ImageFolder
{
    public static IEnumerable<string> Images(string folder, CliOutput output) =>
        ImageWalk.Folder(folder, skip => output.Error.WriteLine($"warning: {GpuAnomalyCli.OneLine(skip)}"));
}
