using System.Globalization;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Anomaly;
using GpuAnomaly.Models.MemoryBank;

namespace GpuAnomaly.Cli.Commands;

/// <summary>Options of `fit --method memory-bank` (defaults in <see cref="FitCommand"/>).</summary>
internal sealed record MemoryBankFitOptions(string? Features, double Coreset, double Holdout, string? Teacher, double PositionWeight,
    string ImageScore, bool LocallyAware, ulong Seed, int Channels, int? NormalClass);

/// <summary>
/// `fit --method memory-bank` and `fit --append`: builds a PatchCore-style bank from DIR/train/good (a held-out
/// part of the normal images fits the normalization and threshold: scores of images inside the bank would be ~0),
/// or grows an existing bank with new normal images. Files are written atomically.
/// </summary>
internal static class MemoryBankFit
{
    /// <summary>Images up to this size default to one large aligned pixel patch per grid cell; larger ones to local 8x8 patches.</summary>
    private const int SmallImage = 64;

    public static int Build(CliOutput output, AnomalyFolder dataset, string outPath, MemoryBankFitOptions o, Device dev, int batch)
    {
        var train = dataset.Train.Select(s => s.ImagePath).ToList();
        if (train.Count < 2) throw new DatasetLayoutException($"{dataset.Root}: a memory bank needs at least 2 images in train/good (found {train.Count})");
        var first = ImageFile.Load(train[0], 3);
        int channels = o.Channels > 0 ? o.Channels : IsGray(first) ? 1 : 3;
        int h = first.Height, w = first.Width;

        FeatureSource[] features;
        try
        {
            features = (o.Features ?? DefaultFeatures(h, w)).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(FeatureSource.ParseSpec).ToArray();
        }
        catch (FormatException e) { throw new UsageException($"--features: {e.Message}"); }
        if (features.Length == 0) throw new UsageException("--features lists no feature source");
        foreach (var f in features.Where(f => f.Kind == FeatureSource.Pixels && (f.Patch > h || f.Patch > w)))
            throw new UsageException($"--features: a {f.Patch}-px patch ({f}) does not fit the {h}x{w} training images");
        var config = new MemoryBankConfig(channels, h, w, features, o.LocallyAware, o.PositionWeight,
            MemoryBankConfig.ParseAggregation(o.ImageScore), 9, 4.0, null, null, null, o.NormalClass, null);

        // Held out: a deterministic shuffle (the seed), so that the normalization sees normal images the bank has not.
        var rng = new Random((int)(o.Seed & 0x7fffffff));
        var order = train.OrderBy(_ => rng.Next()).ToList();
        int holdout = Math.Clamp((int)Math.Round(o.Holdout * train.Count), 1, train.Count - 1);
        var held = order.Take(holdout).Order(StringComparer.Ordinal).ToList();
        var bankImages = order.Skip(holdout).Order(StringComparer.Ordinal).ToList();

        using var teacherFile = features.Any(f => f.Kind == FeatureSource.Teacher) ? SafetensorsFile.Open(o.Teacher ?? PredictCommand.StudentTeacherModel) : null;
        var teacher = teacherFile is null ? null : new WeightLayers(teacherFile);
        int b = Math.Min(batch, bankImages.Count);
        int skipped = 0;
        float[] bank;
        int rows;
        double ratio;
        CoresetReport report;
        using (var builder = new MemoryBankBuilder(config, teacher, dev, b))
        {
            CliProgress.Run(output, "features", bankImages.Count, advance =>
            {
                foreach (var (tensor, valid) in Batches(bankImages, channels, h, w, b, e => { Skip(output, e); skipped++; advance(1); }))
                {
                    builder.Add(tensor, valid);
                    advance(valid);
                }
                return 0;
            });
            if (builder.TrainingTokens == 0) throw new DatasetLayoutException($"{dataset.Root}: no training image could be decoded");
            output.Error.WriteLine($"{builder.TrainingTokens} training tokens of {builder.Features.Dims} features ({builder.Features.Tokens} per image); choosing the coreset on {dev.Name}...");
            ratio = o.Coreset > 0 ? o.Coreset : AutoRatio(builder.TrainingTokens);
            (bank, rows, report) = builder.Build(ratio, o.Seed);
        }
        var neighbors = MemoryBankBuilder.Neighbors(dev, bank, rows, report.Dims, config.ReweightNeighbors);
        config = config with { Coreset = MemoryBankBuilder.CoresetJson(report, ratio) };

        // Normalization on the held-out normal images: the threshold is the highest normal score (Anomalib's
        // normal-only fit), the map normalization likewise from their pixels.
        var fitted = FitNormalization(output, config, teacher, bank, rows, neighbors, dev, batch, held, out int heldSkipped);
        skipped += heldSkipped;
        config = fitted with { FittedOn = $"{dataset.Root} (train/good: {bankImages.Count} images in the bank, {held.Count} held out for the normalization)" };
        MemoryBankBuilder.Write(outPath, config, bank, rows, report.Dims, neighbors, teacherFile);
        output.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"memory bank: {report.TrainingTokens} tokens from {bankImages.Count} images -> {rows} rows x {report.Dims} (coreset {ratio:G4}, " +
            $"coverage radius {report.CoverageRadius:G5}); image threshold {config.ImageScore!.Threshold:G6} from {held.Count} held-out normal images; " +
            $"{skipped} skipped -> {outPath}"));
        return skipped == 0 ? 0 : GpuAnomalyCli.ExitBadInput;
    }

    public static int Append(CliOutput output, string dir, string modelPath, string outPath, float momentum, Device dev, int batch)
    {
        string good = Path.Combine(dir, "train", "good");
        string from = Directory.Exists(good) ? good : dir;
        if (!Directory.Exists(from)) throw new DatasetLayoutException($"{dir}: no such directory");
        var images = ImageWalk.Folder(from, skip => output.Error.WriteLine($"warning: {GpuAnomalyCli.OneLine(skip)}"));
        if (images.Count == 0) throw new DatasetLayoutException($"{from}: no PNG, JPEG or BMP images to append");
        if (!(momentum >= 0 && momentum <= 1)) throw new UsageException($"--momentum {momentum} must be in [0, 1]");

        using var file = SafetensorsFile.Open(modelPath);
        var config = MemoryBankConfig.Parse(modelPath, file.Metadata);
        var (bank, rows, _) = MemoryBankModel.ReadBank(file, config);
        double radius = (double?)config.Coreset?["coverage_radius"] ?? 0;
        var teacher = new WeightLayers(file);
        int skipped = 0, d;
        float[] tokens;
        int q;
        using (var builder = new MemoryBankBuilder(config, teacher, dev, Math.Min(batch, images.Count)))
        {
            d = builder.Features.Dims;
            if (bank.Length != (long)rows * d) throw new SafetensorsException(modelPath, "bank", $"rows of {bank.Length / rows} features; the config gives {d}");
            CliProgress.Run(output, "features", images.Count, advance =>
            {
                foreach (var (tensor, valid) in Batches(images, config.InChannels, config.Height, config.Width, builder.Features.InputShape[0],
                             e => { Skip(output, e); skipped++; advance(1); }))
                {
                    builder.Add(tensor, valid);
                    advance(valid);
                }
                return 0;
            });
            if (builder.TrainingTokens == 0) throw new DatasetLayoutException($"{from}: no image could be decoded");
            tokens = builder.CollectedTokens();
            q = (int)builder.TrainingTokens;
        }
        var (grown, newRows, moved, added) = MemoryBankBuilder.Append(dev, bank, rows, d, tokens, q, radius, momentum);
        var neighbors = MemoryBankBuilder.Neighbors(dev, grown, newRows, d, config.ReweightNeighbors);
        var coreset = config.Coreset?.DeepClone().AsObject() ?? [];
        coreset["bank_rows"] = newRows;
        coreset["appended"] = $"{images.Count - skipped} images from {from}: {moved} tokens moved their nearest row (momentum {momentum}), {added} rows added";
        config = config with { Coreset = coreset };
        var meta = file.Metadata.Where(kv => kv.Key is not ("architecture" or "config")).ToDictionary(kv => kv.Key, kv => kv.Value);
        MemoryBankBuilder.Write(outPath, config, grown, newRows, d, neighbors, file, meta);
        output.Out.WriteLine($"appended {images.Count - skipped} images ({q} tokens): {moved} within the coverage radius {radius:G5} moved their nearest row, " +
            $"{added} added; bank {rows} -> {newRows} rows; normalization kept (refit with 'gpuanomaly fit --model {outPath}' on held-out images) -> {outPath}");
        return skipped == 0 ? 0 : GpuAnomalyCli.ExitBadInput;
    }

    /// <summary>
    /// The default coreset: every training patch up to 65,536 (an exact search over that many rows is cheap, and with
    /// few patches per image, as at 28x28, subsampling costs accuracy: Fashion-MNIST 94.0 with all, 91.6 with 10%),
    /// else the larger of 10% (PatchCore's usual ratio) and 65,536 rows.
    /// </summary>
    public static double AutoRatio(long tokens) => tokens <= 65536 ? 1.0 : Math.Max(0.1, 65536.0 / tokens);

    /// <summary>pixels:20/8/1 on small images (one aligned 20x20 patch per cell of a 3x3 grid at 28x28); 8x8 local patches on larger ones.</summary>
    public static string DefaultFeatures(int h, int w)
    {
        int m = Math.Min(h, w);
        if (Math.Max(h, w) > SmallImage) return "pixels:8/4/1";
        int p = Math.Max(1, (int)Math.Round(m * 5 / 7.0)), s = Math.Max(1, (int)Math.Round(m * 2 / 7.0));
        return $"pixels:{p}/{s}/1";
    }

    private static MemoryBankConfig FitNormalization(CliOutput output, MemoryBankConfig config, WeightLayers? teacher, float[] bank, int rows,
        int[] neighbors, Device dev, int batch, List<string> held, out int skipped)
    {
        using var model = MemoryBankModel.Create(config, teacher, bank, rows, neighbors, dev, Math.Min(batch, held.Count));
        var samples = held.Select(p => new AnomalySample(p, false, "good", null)).ToList();
        var s = DatasetScores.Compute(model, samples, output);
        skipped = s.Skipped;
        if (s.ImageScores.Length == 0) throw new DatasetLayoutException("no held-out image could be decoded to fit the normalization");
        var image = MinMaxNormalization.Fit(s.ImageScores, s.Labels);
        var pixel = MinMaxNormalization.Fit(s.Maps, new bool[s.Maps.Length]);
        return config with { ImageScore = image, PixelScore = pixel };
    }

    private static void Skip(CliOutput output, ImageDecodeException e) => output.Error.WriteLine($"error: {GpuAnomalyCli.OneLine(e.Message)} (skipped)");

    /// <summary>Decoded images as device batches [B, C, H, W] (the last padded with zeros) and how many are real.</summary>
    private static IEnumerable<(float[] Tensor, int Valid)> Batches(List<string> files, int c, int h, int w, int b, Action<ImageDecodeException> onError)
    {
        var batch = new float[(long)b * c * h * w];
        int n = 0;
        foreach (string f in files)
        {
            try { ImageFile.ToTensor(ImageFile.Load(f, c), h, w).CopyTo(batch, (long)n * c * h * w); }
            catch (ImageDecodeException e) { onError(e); continue; }
            if (++n == b)
            {
                yield return (batch, n);
                batch = new float[batch.Length];
                n = 0;
            }
        }
        if (n > 0) yield return (batch, n);
    }

    private static bool IsGray(DecodedImage img)
    {
        for (int i = 0; i < img.Pixels.Length; i += 3)
            if (img.Pixels[i] != img.Pixels[i + 1] || img.Pixels[i] != img.Pixels[i + 2]) return false;
        return true;
    }
}
