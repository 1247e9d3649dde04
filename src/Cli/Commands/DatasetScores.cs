using GpuAnomaly.Cli.Images;
using GpuAnomaly.Models.Anomaly;

namespace GpuAnomaly.Cli.Commands;

/// <summary>A dataset split scored by a model: raw image scores, labels, raw maps and (when the dataset has them) masks.</summary>
internal sealed record DatasetScores(float[] ImageScores, bool[] Labels, float[] Maps, bool[]? Masks, int Width, int Height, int Skipped)
{
    public static DatasetScores Compute(IAnomalyModel model, IReadOnlyList<AnomalySample> samples, CliOutput output)
    {
        int h = model.InputShape[2], w = model.InputShape[3];
        var bySample = samples.ToDictionary(s => s.ImagePath);
        bool withMasks = samples.Any(s => s.MaskPath is not null);
        var scores = new List<float>();
        var labels = new List<bool>();
        var maps = new List<float>();
        var masks = new List<bool>();
        int skipped = 0;
        foreach (var s in new BatchScorer(model).Score(samples.Select(x => x.ImagePath),
                     e => { output.Error.WriteLine($"error: {GpuAnomalyCli.OneLine(e.Message)} (skipped)"); skipped++; }))
        {
            var sample = bySample[s.Path];
            scores.Add(s.RawScore);
            labels.Add(sample.IsAnomalous);
            maps.AddRange(s.Map);
            if (!withMasks) continue;
            if (sample.MaskPath is null)
                masks.AddRange(new bool[h * w]); // normal images, or anomalous ones without a mask: no anomalous pixel known
            else
                masks.AddRange(ImageFile.ToTensor(ImageFile.Load(sample.MaskPath, 1), h, w).Select(v => v > 0.5f));
        }
        return new DatasetScores([.. scores], [.. labels], [.. maps], withMasks ? [.. masks] : null, w, h, skipped);
    }
}
