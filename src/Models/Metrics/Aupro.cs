namespace GpuAnomaly.Models.Metrics;

/// <summary>
/// The per-region-overlap curve: Pro[i] is the mean over all ground-truth regions of the fraction of the
/// region with map >= Thresholds[i]; Fpr[i] the fraction of normal pixels (all images) with map >= Thresholds[i].
/// One point per distinct map value, thresholds decreasing, starting at (0, 0) with threshold +inf and
/// ending at (1, 1).
/// </summary>
public sealed record ProCurve(double[] Fpr, double[] Pro, double[] Thresholds);

/// <summary>
/// Area under the PRO curve up to a false-positive-rate limit (Bergmann et al., "The MVTec AD ...", IJCV 2021;
/// Anomalib's AUPRO). Exact over all distinct thresholds: the pixels are sorted once and walked from the highest
/// value down with a counter per region, O(n log n) for n = width * height * count pixels.
/// </summary>
public static class Aupro
{
    /// <summary>
    /// AUPRO: the PRO-vs-FPR curve integrated with the trapezoid rule from FPR 0 to <paramref name="fprLimit"/>
    /// (the last segment interpolated linearly at the limit), divided by the limit, so a perfect map scores 1.
    /// Regions are the 8-connected components of each image's mask (regions never span images).
    /// </summary>
    /// <param name="maps">Anomaly maps, count images of height x width, row-major, image after image.</param>
    /// <param name="masks">Ground-truth masks in the same layout; true = anomalous pixel.</param>
    /// <exception cref="ArgumentException">Sizes disagree, a NaN value, the limit is outside (0, 1], no anomalous
    /// region, or no normal pixel.</exception>
    public static double Compute(ReadOnlySpan<float> maps, ReadOnlySpan<bool> masks, int width, int height, int count, double fprLimit = 0.3)
    {
        if (!(fprLimit > 0 && fprLimit <= 1))
            throw new ArgumentException($"Aupro: fprLimit must lie in (0, 1], got {fprLimit}");
        var ranked = Rank("Aupro", maps, masks, width, height, count);
        double area = 0, fpr0 = 0, pro0 = 0;
        foreach (var (fpr, pro, _) in Walk(ranked))
        {
            if (fpr >= fprLimit)
            {
                // Close the curve at the limit on the segment that crosses it (fpr > fpr0 here, since
                // fpr0 < limit <= fpr; exact when fpr == limit).
                double proAtLimit = pro0 + (pro - pro0) * (fprLimit - fpr0) / (fpr - fpr0);
                area += (fprLimit - fpr0) * (pro0 + proAtLimit) / 2;
                break;
            }
            area += (fpr - fpr0) * (pro0 + pro) / 2;
            fpr0 = fpr; pro0 = pro;
        }
        return area / fprLimit;
    }

    /// <summary>The full PRO curve (for plots; one point per distinct map value, see <see cref="ProCurve"/>).</summary>
    public static ProCurve Curve(ReadOnlySpan<float> maps, ReadOnlySpan<bool> masks, int width, int height, int count)
    {
        var ranked = Rank("Aupro.Curve", maps, masks, width, height, count);
        var fprs = new List<double> { 0.0 };
        var pros = new List<double> { 0.0 };
        var thrs = new List<double> { double.PositiveInfinity };
        foreach (var (fpr, pro, t) in Walk(ranked))
        {
            fprs.Add(fpr); pros.Add(pro); thrs.Add(t);
        }
        return new ProCurve(fprs.ToArray(), pros.ToArray(), thrs.ToArray());
    }

    private sealed record Ranked(float[] Values, int[] Region, double[] InverseSize, long Normals);

    /// <summary>Labels the regions (ids continue across images, 0 = normal) and sorts the pixels ascending.</summary>
    private static Ranked Rank(string op, ReadOnlySpan<float> maps, ReadOnlySpan<bool> masks, int width, int height, int count)
    {
        if (width <= 0 || height <= 0 || count <= 0)
            throw new ArgumentException($"{op}: {count} images of {width}x{height} must all be positive");
        long n = (long)width * height * count;
        if (n > Array.MaxLength)
            throw new ArgumentException($"{op}: {n} pixels are too many for one array");
        if (maps.Length != n || masks.Length != n)
            throw new ArgumentException($"{op}: {count} images of {width}x{height} need {n} values, maps has {maps.Length} and masks {masks.Length}");
        RankedScores.CheckFinite(op, maps);

        int plane = width * height;
        var region = new int[n];
        var sizes = new List<long> { 0 }; // index 0: the normal pixels
        for (int img = 0; img < count; img++)
        {
            var labels = region.AsSpan(img * plane, plane);
            int found = ConnectedComponents.Label(masks.Slice(img * plane, plane), width, height, labels);
            int offset = sizes.Count - 1;
            for (int r = 0; r < found; r++) sizes.Add(0);
            for (int i = 0; i < plane; i++)
            {
                if (labels[i] != 0) labels[i] += offset;
                sizes[labels[i]]++;
            }
        }
        if (sizes.Count == 1)
            throw new ArgumentException($"{op}: the masks of {count} images of {width}x{height} hold no anomalous region");
        if (sizes[0] == 0)
            throw new ArgumentException($"{op}: the masks of {count} images of {width}x{height} hold no normal pixel, so the FPR is undefined");

        var inverse = new double[sizes.Count];
        for (int r = 1; r < sizes.Count; r++) inverse[r] = 1.0 / sizes[r];
        var values = maps.ToArray();
        Array.Sort(values, region);
        return new Ranked(values, region, inverse, sizes[0]);
    }

    /// <summary>(FPR, PRO, threshold) after each tie group, from the highest value down.</summary>
    private static IEnumerable<(double Fpr, double Pro, float Threshold)> Walk(Ranked r)
    {
        int regions = r.InverseSize.Length - 1;
        long fp = 0;
        double overlapSum = 0; // sum over regions of |region ∩ {map >= t}| / |region|
        for (int end = r.Values.Length - 1; end >= 0;)
        {
            int start = RankedScores.GroupStart(r.Values, end);
            for (int i = start; i <= end; i++)
            {
                int id = r.Region[i];
                if (id == 0) fp++;
                else overlapSum += r.InverseSize[id];
            }
            // At the last group every region is fully covered: report exactly 1 rather than the rounded sum.
            double pro = start == 0 ? 1.0 : overlapSum / regions;
            yield return ((double)fp / r.Normals, pro, r.Values[end]);
            end = start - 1;
        }
    }
}
