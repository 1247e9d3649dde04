using System.Buffers;

namespace GpuAnomaly.Models.MemoryBank;

/// <summary>
/// PatchCore's scoring on the host (METHODS.md §5; per image, a few hundred values at most): the image score from
/// the patch scores, and the anomaly map (patch scores resized bilinearly to the image, Gaussian-smoothed).
/// </summary>
public static class PatchCoreScoring
{
    /// <summary>
    /// PatchCore's reweighting of the largest patch score s* (anomalib's compute_anomaly_score): with d_j the L2
    /// distances from the test patch to the b bank rows nearest its neighbour m* (m* itself first),
    /// w = 1 - softmax(d)_0, score = w s*.
    /// </summary>
    public static float Reweight(float best, ReadOnlySpan<float> neighborDistances)
    {
        float max = float.NegativeInfinity;
        foreach (float d in neighborDistances) max = Math.Max(max, d);
        double sum = 0;
        foreach (float d in neighborDistances) sum += Math.Exp(d - max);
        double w = 1 - Math.Exp(neighborDistances[0] - max) / sum;
        return (float)(w * best);
    }

    /// <summary>L2 distance of two rows.</summary>
    public static float Distance(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => System.Numerics.Tensors.TensorPrimitives.Distance(a, b);

    /// <summary>The patch-score grid [gh, gw] -> the map [h, w]: bilinear (align_corners=False), then a Gaussian of sigma px.</summary>
    public static void Map(ReadOnlySpan<float> grid, int gh, int gw, Span<float> map, int h, int w, double sigma)
    {
        Bilinear.Resize(grid, gh, gw, map, h, w);
        if (sigma > 0) GaussianBlur(map, h, w, sigma);
    }

    /// <summary>
    /// Separable Gaussian blur in place, as anomalib's GaussianBlur2d(sigma): kernel size 2 * int(4 sigma + 0.5) + 1,
    /// reflect padding (a kernel wider than the image reflects repeatedly).
    /// </summary>
    public static void GaussianBlur(Span<float> img, int h, int w, double sigma)
    {
        int r = (int)(4 * sigma + 0.5);
        // Pooled scratch: the map is blurred once per image, and these arrays were an eighth of an inference's garbage.
        var kArray = ArrayPool<float>.Shared.Rent(2 * r + 1);
        var tmpArray = ArrayPool<float>.Shared.Rent(img.Length);
        try
        {
            var k = kArray.AsSpan(0, 2 * r + 1);
            var tmp = tmpArray.AsSpan(0, img.Length);
            double sum = 0;
            for (int t = -r; t <= r; t++) sum += k[t + r] = (float)Math.Exp(-0.5 * t * t / (sigma * sigma));
            for (int t = 0; t < k.Length; t++) k[t] = (float)(k[t] / sum);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    float s = 0;
                    for (int t = -r; t <= r; t++) s += k[t + r] * img[y * w + Reflect(x + t, w)];
                    tmp[y * w + x] = s;
                }
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    float s = 0;
                    for (int t = -r; t <= r; t++) s += k[t + r] * tmp[Reflect(y + t, h) * w + x];
                    img[y * w + x] = s;
                }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(kArray);
            ArrayPool<float>.Shared.Return(tmpArray);
        }
    }

    /// <summary>Reflect padding without repeating the edge (PyTorch's "reflect"), folded as often as needed.</summary>
    public static int Reflect(int i, int n)
    {
        if (n == 1) return 0;
        int period = 2 * (n - 1);
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - i;
    }
}
