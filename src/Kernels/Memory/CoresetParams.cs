namespace GpuAnomaly.Kernels.Memory;

/// <summary>
/// PatchCore's greedy k-center coreset (METHODS.md §5) of N features [N, D]: the features are first projected to
/// Projected dimensions (y = x R with R [D, Projected], <see cref="CoresetProjection"/>; Projected = 0 uses x
/// as it is); the first pick is <see cref="Start"/>; each next pick is the point farthest (squared L2, in the
/// projected space) from every point picked so far, ties by the lower index. Outputs: the Count picked indices
/// (int32, in pick order) and each point's final squared distance to its nearest pick [N] (its maximum is the
/// projected coverage radius, squared).
/// </summary>
public struct CoresetParams
{
    public int N, D, Projected, Count, Start;

    public static CoresetParams Create(int n, int d, int projected, int count, int start) =>
        new() { N = n, D = d, Projected = projected, Count = count, Start = start };

    /// <summary>The dimension distances are computed in.</summary>
    public readonly int Dims => Projected > 0 ? Projected : D;
    public readonly long FeatureElements => (long)N * D;
    public readonly long ProjectionElements => Projected > 0 ? (long)D * Projected : 0;

    public readonly void Validate()
    {
        if (N < 1 || D < 1 || Projected < 0)
            throw new ArgumentException($"coreset: sizes must be positive ({this})");
        if (Count < 1 || Count > N)
            throw new ArgumentException($"coreset: {Count} picks from {N} points; expected 1..N ({this})");
        if ((uint)Start >= (uint)N)
            throw new ArgumentException($"coreset: start point {Start} is not one of the {N} points ({this})");
        if (FeatureElements > int.MaxValue || (long)N * Dims > int.MaxValue || ProjectionElements > int.MaxValue)
            throw new ArgumentException($"coreset: tensors above 2^31 elements are not supported ({this})");
    }

    /// <summary>Checks features [N, D], projection [D, Projected] (empty when Projected = 0), selected [Count], min distances [N].</summary>
    public readonly void CheckLengths(long features, long projection, long selected, long minDistances)
    {
        Validate();
        if (features != FeatureElements || projection != ProjectionElements || selected != Count || minDistances != N)
            throw new ArgumentException($"coreset: features {features}, projection {projection}, selected {selected}, min distances {minDistances} " +
                $"elements do not fit {this} (features N*D, projection D*Projected, selected Count, min distances N)");
    }

    public override readonly string ToString() => $"N={N} D={D} projected={Projected} count={Count} start={Start}";
}

/// <summary>
/// The coreset's random projection and start point, the same on every device and every run for a seed: a
/// SplitMix64 stream turned into standard normals by Box-Muller (our own generator, so that no runtime's
/// System.Random change can move a model's bank), scaled by 1/sqrt(projected) (Johnson-Lindenstrauss).
/// </summary>
public static class CoresetProjection
{
    public static float[] Gaussian(int d, int projected, ulong seed)
    {
        if (d < 1 || projected < 1) throw new ArgumentException($"coreset projection: sizes {d} x {projected} must be positive");
        var r = new float[checked(d * projected)];
        ulong state = seed;
        double scale = 1.0 / Math.Sqrt(projected);
        for (int i = 0; i < r.Length; i += 2)
        {
            double u1 = (Next(ref state) >> 11) * (1.0 / (1UL << 53)), u2 = (Next(ref state) >> 11) * (1.0 / (1UL << 53));
            double rad = Math.Sqrt(-2.0 * Math.Log(1.0 - u1)), th = 2.0 * Math.PI * u2;
            r[i] = (float)(rad * Math.Cos(th) * scale);
            if (i + 1 < r.Length) r[i + 1] = (float)(rad * Math.Sin(th) * scale);
        }
        return r;
    }

    /// <summary>The first pick for a seed: uniform over the N points.</summary>
    public static int Start(int n, ulong seed)
    {
        ulong state = seed ^ 0x5DEECE66DUL;
        return (int)(Next(ref state) % (ulong)n);
    }

    private static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
