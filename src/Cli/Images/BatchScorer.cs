using GpuAnomaly.Engine;
using GpuAnomaly.Models.Anomaly;

namespace GpuAnomaly.Cli.Images;

/// <summary>One scored image: the decoded pixels, its raw multi-scale map [H, W] and raw image score.</summary>
public sealed record ScoredImage(string Path, DecodedImage Image, float[] Map, float RawScore);

/// <summary>
/// Feeds image files to a model in device batches (the last one padded, its padding dropped). Files that
/// do not decode are reported through <c>onError</c> and skipped; the others are still scored.
/// </summary>
public sealed class BatchScorer(IAnomalyModel model)
{
    public IEnumerable<ScoredImage> Score(IEnumerable<string> files, Action<ImageDecodeException> onError, Action<int>? advance = null)
    {
        int b = model.InputShape[0], c = model.InputShape[1], h = model.InputShape[2], w = model.InputShape[3];
        var pending = new List<(string Path, DecodedImage Image)>();
        foreach (string f in files)
        {
            try { pending.Add((f, ImageFile.Load(f, c))); }
            catch (ImageDecodeException e)
            {
                onError(e);
                advance?.Invoke(1);
            }
            if (pending.Count == b)
                foreach (var s in Flush()) yield return s;
        }
        foreach (var s in Flush()) yield return s;

        IEnumerable<ScoredImage> Flush()
        {
            if (pending.Count == 0) return [];
            var batch = new float[b * c * h * w];
            for (int i = 0; i < pending.Count; i++) ImageFile.ToTensor(pending[i].Image, h, w).CopyTo(batch, i * c * h * w);
            var result = model.Score(batch);
            for (int i = 0; i < pending.Count; i++)
            {
                if (!float.IsFinite(result.ImageScores[i])) throw new NonFiniteOutputException("image score", pending[i].Path, result.ImageScores[i]);
                foreach (float v in result.Map.AsSpan(i * h * w, h * w))
                    if (!float.IsFinite(v)) throw new NonFiniteOutputException("anomaly map", pending[i].Path, v);
            }
            var scored = pending.Select((p, i) => new ScoredImage(p.Path, p.Image, result.Map.AsSpan(i * h * w, h * w).ToArray(), result.ImageScores[i])).ToList();
            advance?.Invoke(pending.Count);
            pending.Clear();
            return scored;
        }
    }
}
