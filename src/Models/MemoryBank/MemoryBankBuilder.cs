using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Kernels.Knn;
using GpuAnomaly.Kernels.Memory;

namespace GpuAnomaly.Models.MemoryBank;

/// <summary>What building a bank did: sizes, and the coverage radius (the largest L2 distance from a training token to its nearest bank row).</summary>
public sealed record CoresetReport(int TrainingTokens, int BankRows, int Dims, int Projected, double CoverageRadius, ulong Seed);

/// <summary>
/// Builds a memory bank (PatchCore): collects the tokens of the training images, picks the bank by greedy
/// k-center on the device (a random projection to <see cref="ProjectedDims"/> dims when the tokens are wider), measures the
/// coverage radius in the full feature space with the kNN op, and finds every bank row's b nearest rows (for the
/// reweighting). <see cref="Append"/> grows an existing bank with new normal tokens without rebuilding it.
/// </summary>
public sealed class MemoryBankBuilder : IDisposable
{
    public const int ProjectedDims = 128;

    private readonly MemoryBankFeatures _features;
    private readonly List<float[]> _chunks = [];
    private long _tokens;

    public MemoryBankBuilder(MemoryBankConfig config, WeightLayers? teacherWeights, Device device, int batch)
    {
        _features = new MemoryBankFeatures(config, teacherWeights, device, batch);
    }

    public MemoryBankFeatures Features => _features;
    public Device Device => _features.Device;
    public long TrainingTokens => _tokens;

    /// <summary>Adds the first <paramref name="valid"/> images of a batch [B, C, H, W].</summary>
    public void Add(float[] batch, int valid)
    {
        var tokens = _features.Extract(batch);
        int per = _features.Tokens * _features.Dims;
        if ((_tokens + (long)valid * _features.Tokens) * _features.Dims > int.MaxValue)
            throw new ArgumentException($"memory bank: more than 2^31 training feature values ({_features.Dims} per token); use fewer images, a larger stride or fewer sources");
        _chunks.Add(tokens.AsSpan(0, valid * per).ToArray());
        _tokens += (long)valid * _features.Tokens;
    }

    /// <summary>All collected tokens [N, D].</summary>
    public float[] CollectedTokens()
    {
        var all = new float[_tokens * _features.Dims];
        long at = 0;
        foreach (var c in _chunks) { c.CopyTo(all, at); at += c.Length; }
        return all;
    }

    /// <summary>Chooses the bank: a coreset of <paramref name="ratio"/> of the tokens (1 keeps them all).</summary>
    public (float[] Bank, int Rows, CoresetReport Report) Build(double ratio, ulong seed)
    {
        if (!(ratio > 0 && ratio <= 1)) throw new ArgumentException($"coreset ratio {ratio} must be in (0, 1]");
        if (_tokens == 0) throw new InvalidOperationException("memory bank: no training images were added");
        int n = (int)_tokens, d = _features.Dims;
        var all = CollectedTokens();
        int count = Math.Clamp((int)Math.Round(ratio * n), 1, n);
        var dev = Device;
        float[] bank;
        int projected = 0;
        if (count == n) bank = all;
        else
        {
            projected = d > ProjectedDims ? ProjectedDims : 0;
            var p = CoresetParams.Create(n, d, projected, count, CoresetProjection.Start(n, seed));
            using var x = dev.FromHost(all, new Shape(n, d), "coreset features");
            using var r = projected > 0 ? dev.FromHost(CoresetProjection.Gaussian(d, projected, seed), new Shape(d, projected), "coreset projection") : null;
            using var selected = dev.Allocate(new Shape(count), DType.I32, "coreset picks");
            using var min = dev.Allocate(new Shape(n), DType.F32, "coreset distances");
            dev.Coreset(p, x, r, selected, min);
            var picks = new int[count];
            dev.CopyToHost(selected, MemoryMarshal.AsBytes(picks.AsSpan()));
            bank = new float[(long)count * d];
            for (int i = 0; i < count; i++) all.AsSpan(picks[i] * d, d).CopyTo(bank.AsSpan(i * d, d));
        }
        double radius = count == n ? 0 : Math.Sqrt(Nearest(dev, all, n, bank, count, d).Max(v => v.Distance));
        return (bank, count, new CoresetReport(n, count, d, projected, radius, seed));
    }

    /// <summary>Each query's nearest bank row (squared L2 distance, index), by the kNN op, in chunks that bound device memory.</summary>
    public static (float Distance, int Index)[] Nearest(Device dev, ReadOnlySpan<float> queries, int q, ReadOnlySpan<float> bank, int rows, int d)
    {
        var result = new (float, int)[q];
        using var b = dev.FromHost(bank, new Shape(rows, d), "memory bank");
        using var norms = dev.Allocate(new Shape(rows), DType.F32, "memory bank norms");
        dev.RowNorms(rows, d, b, norms);
        int chunk = Math.Max(1, Math.Min(q, 1 << 16));
        using var qt = dev.Allocate(new Shape(chunk, d), DType.F32, "kNN queries");
        using var dist = dev.Allocate(new Shape(chunk, 1), DType.F32, "kNN distances");
        using var idx = dev.Allocate(new Shape(chunk, 1), DType.I32, "kNN indices");
        var hd = new float[chunk];
        var hi = new int[chunk];
        for (int q0 = 0; q0 < q; q0 += chunk)
        {
            int m = Math.Min(chunk, q - q0);
            var part = new float[chunk * d];
            queries.Slice(q0 * d, m * d).CopyTo(part);
            qt.CopyFrom(part);
            dev.Knn(KnnParams.Create(chunk, rows, d, 1), qt, b, norms, dist, idx);
            dev.CopyToHost(dist, MemoryMarshal.AsBytes(hd.AsSpan()));
            dev.CopyToHost(idx, MemoryMarshal.AsBytes(hi.AsSpan()));
            for (int i = 0; i < m; i++) result[q0 + i] = (Math.Max(hd[i], 0f), hi[i]);
        }
        return result;
    }

    /// <summary>Every bank row's <paramref name="b"/> nearest rows (itself first unless it has duplicates), [N, b].</summary>
    public static int[] Neighbors(Device dev, float[] bank, int rows, int d, int b)
    {
        b = Math.Min(b, rows);
        var result = new int[(long)rows * b];
        using var m = dev.FromHost(bank, new Shape(rows, d), "memory bank");
        using var norms = dev.Allocate(new Shape(rows), DType.F32, "memory bank norms");
        dev.RowNorms(rows, d, m, norms);
        using var dist = dev.Allocate(new Shape(rows, b), DType.F32, "bank neighbour distances");
        using var idx = dev.Allocate(new Shape(rows, b), DType.I32, "bank neighbours");
        dev.Knn(KnnParams.Create(rows, rows, d, b), m, m, norms, dist, idx);
        dev.CopyToHost(idx, MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    /// <summary>
    /// Grows a bank with new normal tokens [q, D] (fit --append): a token within the bank's coverage radius
    /// moves its nearest row by momentum (v = m v + (1 - m) f, the hybrid-memory update without SpCL's
    /// re-normalization, which would distort an L2 bank); the others extend the coreset: greedy k-center
    /// continues from the existing bank, adding the farthest new token until every new token is within the radius.
    /// Returns the new bank and how many rows were moved and added.
    /// </summary>
    public static (float[] Bank, int Rows, int Moved, int Added) Append(Device dev, float[] bank, int rows, int d,
        float[] tokens, int q, double radius, float momentum)
    {
        var nearest = Nearest(dev, tokens, q, bank, rows, d);
        double r2 = radius * radius;
        var near = new List<int>();
        var far = new List<int>();
        for (int i = 0; i < q; i++) (nearest[i].Distance <= r2 ? near : far).Add(i);

        // Momentum: the near tokens move their nearest rows, on the device, in token order.
        var updated = bank;
        if (near.Count > 0)
        {
            using var m = dev.FromHost(bank, new Shape(rows, d), "memory bank");
            var feats = new float[(long)near.Count * d];
            var index = new int[near.Count];
            for (int j = 0; j < near.Count; j++)
            {
                tokens.AsSpan(near[j] * d, d).CopyTo(feats.AsSpan(j * d, d));
                index[j] = nearest[near[j]].Index;
            }
            using var f = dev.FromHost(feats, new Shape(near.Count, d), "new tokens");
            using var ix = dev.Allocate(new Shape(near.Count), DType.I32, "nearest rows");
            dev.CopyFromHost(MemoryMarshal.AsBytes(index.AsSpan()), ix);
            dev.HybridMemoryUpdate(HybridMemoryUpdateParams.Create(rows, d, near.Count, momentum, normalize: false), m, f, ix);
            updated = m.ToArray();
        }

        // k-center continuation over the far tokens: min distance to the bank so far, add the farthest, repeat.
        var added = new List<int>();
        var min = far.Select(i => (double)nearest[i].Distance).ToArray();
        while (far.Count > 0)
        {
            int at = 0;
            for (int j = 1; j < min.Length; j++) if (min[j] > min[at]) at = j;
            if (min[at] <= r2) break;
            added.Add(far[at]);
            var pick = tokens.AsSpan(far[at] * d, d);
            for (int j = 0; j < min.Length; j++)
            {
                double e = System.Numerics.Tensors.TensorPrimitives.Distance(tokens.AsSpan(far[j] * d, d), pick);
                min[j] = Math.Min(min[j], e * e);
            }
        }
        var grown = new float[(long)(rows + added.Count) * d];
        updated.CopyTo(grown, 0);
        for (int j = 0; j < added.Count; j++) tokens.AsSpan(added[j] * d, d).CopyTo(grown.AsSpan((rows + j) * d, d));
        return (grown, rows + added.Count, near.Count, added.Count);
    }

    public void Dispose() => _features.Dispose();

    /// <summary>The coreset part of the config.</summary>
    public static JsonObject CoresetJson(CoresetReport r, double ratio) => new()
    {
        ["ratio"] = ratio,
        ["training_tokens"] = r.TrainingTokens,
        ["bank_rows"] = r.BankRows,
        ["projected_dims"] = r.Projected,
        ["seed"] = r.Seed.ToString(CultureInfo.InvariantCulture),
        ["coverage_radius"] = r.CoverageRadius,
    };

    /// <summary>
    /// Writes a memory_bank model file atomically: bank, neighbour table, the teacher tensors the config's sources
    /// need (copied from <paramref name="teacher"/>), the config in __metadata__.
    /// </summary>
    public static void Write(string path, MemoryBankConfig config, float[] bank, int rows, int d, int[] neighbors, SafetensorsFile? teacher,
        IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        var tensors = new List<SafetensorsTensor>
        {
            new("bank", [rows, d], bank),
            new("bank_neighbors", DType.I32, [rows, neighbors.Length / rows], MemoryMarshal.AsBytes(neighbors.AsSpan()).ToArray()),
        };
        var meta = new Dictionary<string, string>();
        if (extraMetadata is not null) foreach (var (k, v) in extraMetadata) meta[k] = v;
        meta["architecture"] = MemoryBankConfig.Architecture;
        meta["config"] = config.ToJsonString();
        if (teacher is not null)
        {
            foreach (var s in config.Features.Where(f => f.Kind == FeatureSource.Teacher))
                foreach (var t in teacher.Tensors.Where(t => t.Name.StartsWith($"teacher.p{s.Scale}.layers.", StringComparison.Ordinal)))
                    if (!tensors.Any(x => x.Name == t.Name))
                        tensors.Add(new SafetensorsTensor(t.Name, t.DTypeTag, [.. t.Shape], teacher.ReadBytes(t.Name)));
            if (teacher.Metadata.TryGetValue(WeightLayers.MetadataKey, out var ternary)) meta[WeightLayers.MetadataKey] = ternary;
        }
        SafetensorsWriter.Write(path, tensors, meta);
    }
}
