using System.Runtime.InteropServices;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Kernels.Knn;
using GpuAnomaly.Models.Anomaly;

namespace GpuAnomaly.Models.MemoryBank;

/// <summary>
/// A PatchCore-style detector (Roth et al., CVPR 2022; METHODS.md §5): the feature stage turns a batch into
/// tokens, the fused kNN op finds each token's nearest bank row on the device (the patch score is the L2
/// distance), and the host takes the image score (PatchCore's reweighted maximum, or the maximum or mean of the
/// patch scores) and the map (resized, smoothed). The bank is a coreset of the training tokens chosen by greedy
/// k-center (<see cref="MemoryBankBuilder"/>).
/// </summary>
public sealed class MemoryBankModel : IAnomalyModel
{
    private readonly MemoryBankFeatures _features;
    private readonly float[] _bank;
    private readonly int[] _neighbors;
    private readonly Tensor _bankTensor, _norms, _queries, _distances, _indices;
    // The query, distance and index buffers are reused by every batch: one Score at a time.
    private readonly ExclusiveRun _exclusive = new(MemoryBankConfig.Architecture);

    private MemoryBankModel(MemoryBankConfig config, MemoryBankFeatures features, float[] bank, int[] neighbors, int rows)
    {
        Config = config;
        _features = features;
        _bank = bank;
        _neighbors = neighbors;
        BankRows = rows;
        var dev = features.Device;
        int d = features.Dims, q = features.InputShape[0] * features.Tokens;
        _bankTensor = dev.FromHost(bank, new Shape(rows, d), "memory bank");
        _norms = dev.Allocate(new Shape(rows), DType.F32, "memory bank norms");
        dev.RowNorms(rows, d, _bankTensor, _norms);
        _queries = dev.Allocate(new Shape(q, d), DType.F32, "memory bank queries");
        _distances = dev.Allocate(new Shape(q, 1), DType.F32, "memory bank distances");
        _indices = dev.Allocate(new Shape(q, 1), DType.I32, "memory bank indices");
    }

    public MemoryBankConfig Config { get; }
    public Shape InputShape => _features.InputShape;
    public Device Device => _features.Device;
    public string Architecture => MemoryBankConfig.Architecture;
    public MinMaxNormalization? ImageScore => Config.ImageScore;
    public MinMaxNormalization? PixelScore => Config.PixelScore;
    public int BankRows { get; }
    public int Dims => _features.Dims;
    public ReadOnlySpan<float> Bank => _bank;
    public MemoryBankFeatures Features => _features;

    public static MemoryBankModel Load(string path, Device device, int batch)
    {
        using var file = SafetensorsFile.Open(path);
        var config = MemoryBankConfig.Parse(path, file.Metadata);
        var (bank, rows, neighbors) = ReadBank(file, config);
        var features = new MemoryBankFeatures(config, new WeightLayers(file), device, batch);
        try
        {
            if (features.Dims != bank.Length / rows)
                throw new SafetensorsException(path, "bank", $"rows of {bank.Length / rows} features; the config's feature sources give {features.Dims}");
            return new MemoryBankModel(config, features, bank, neighbors, rows);
        }
        catch
        {
            features.Dispose();
            throw;
        }
    }

    /// <summary>A model from its parts (what `fit` builds before anything is written).</summary>
    public static MemoryBankModel Create(MemoryBankConfig config, WeightLayers? teacherWeights, float[] bank, int rows, int[] neighbors, Device device, int batch)
    {
        var features = new MemoryBankFeatures(config, teacherWeights, device, batch);
        try
        {
            if (bank.Length != (long)rows * features.Dims || neighbors.Length != (long)rows * Math.Min(config.ReweightNeighbors, rows))
                throw new ArgumentException($"memory bank: {bank.Length} bank values and {neighbors.Length} neighbours do not fit {rows} rows of {features.Dims}");
            return new MemoryBankModel(config, features, bank, neighbors, rows);
        }
        catch
        {
            features.Dispose();
            throw;
        }
    }

    /// <summary>The bank [N, D] and its neighbour table [N, b], checked: finite values, indices inside the bank.</summary>
    public static (float[] Bank, int Rows, int[] Neighbors) ReadBank(SafetensorsFile file, MemoryBankConfig config)
    {
        var entry = file["bank"];
        if (entry.Shape.Count != 2 || entry.Shape[0] < 1 || entry.Shape[1] < 1)
            throw new SafetensorsException(file.Path, "bank", $"shape [{string.Join(", ", entry.Shape)}]; expected [N, D]");
        int rows = entry.Shape[0];
        var bank = file.ReadFloat32("bank");
        for (int i = 0; i < bank.Length; i++)
            if (!float.IsFinite(bank[i]))
                throw new SafetensorsException(file.Path, "bank", $"row {i / entry.Shape[1]} holds {bank[i]}; bank features must be finite");
        var nb = file["bank_neighbors"];
        int b = Math.Min(config.ReweightNeighbors, rows);
        if (nb.DTypeTag != "I32" || nb.Shape.Count != 2 || nb.Shape[0] != rows || nb.Shape[1] != b)
            throw new SafetensorsException(file.Path, "bank_neighbors", $"{nb.DTypeTag} [{string.Join(", ", nb.Shape)}]; expected I32 [{rows}, {b}]");
        var neighbors = MemoryMarshal.Cast<byte, int>(file.ReadBytes("bank_neighbors")).ToArray();
        foreach (int i in neighbors)
            if ((uint)i >= (uint)rows) throw new SafetensorsException(file.Path, "bank_neighbors", $"index {i} is not a row of the {rows}-row bank");
        return (bank, rows, neighbors);
    }

    /// <summary>Patch scores [B, T] (L2 distance to the nearest bank row) and those rows, for a batch.</summary>
    public (float[] Scores, int[] Nearest, float[] Tokens) PatchScores(float[] images)
    {
        using var run = _exclusive.Enter();
        var tokens = _features.Extract(images);
        var dev = Device;
        _queries.CopyFrom(tokens);
        dev.Knn(KnnParams.Create((int)_queries.Shape[0], BankRows, Dims, 1), _queries, _bankTensor, _norms, _distances, _indices);
        var scores = _distances.ToArray();
        var nearest = new int[scores.Length];
        dev.CopyToHost(_indices, MemoryMarshal.AsBytes(nearest.AsSpan()));
        for (int i = 0; i < scores.Length; i++) scores[i] = MathF.Sqrt(Math.Max(scores[i], 0f));
        return (scores, nearest, tokens);
    }

    public AnomalyMaps Score(float[] images)
    {
        using var run = _exclusive.Enter();
        var (scores, nearest, tokens) = PatchScores(images);
        int b = InputShape[0], t = _features.Tokens, d = Dims, h = Config.Height, w = Config.Width;
        int nbCount = _neighbors.Length / BankRows;
        var map = new float[(long)b * h * w];
        var imageScores = new float[b];
        var nd = new float[nbCount];
        for (int n = 0; n < b; n++)
        {
            var patch = scores.AsSpan(n * t, t);
            int at = 0;
            for (int j = 1; j < t; j++) if (patch[j] > patch[at]) at = j;
            imageScores[n] = Config.Aggregation switch
            {
                ImageAggregation.Mean => Mean(patch),
                ImageAggregation.Max => patch[at],
                _ => Reweighted(tokens.AsSpan((n * t + at) * d, d), nearest[n * t + at], patch[at], nd),
            };
            PatchCoreScoring.Map(patch, _features.GridH, _features.GridW, map.AsSpan(n * h * w, h * w), h, w, Config.MapSigma);
        }
        return new AnomalyMaps(map, imageScores);
    }

    private float Reweighted(ReadOnlySpan<float> token, int nearest, float best, float[] nd)
    {
        int b = nd.Length, d = Dims;
        for (int j = 0; j < b; j++) nd[j] = PatchCoreScoring.Distance(token, _bank.AsSpan(_neighbors[nearest * b + j] * d, d));
        return PatchCoreScoring.Reweight(best, nd);
    }

    private static float Mean(ReadOnlySpan<float> v)
    {
        double s = 0;
        foreach (float x in v) s += x;
        return (float)(s / v.Length);
    }

    public void Dispose()
    {
        _features.Dispose();
        _bankTensor.Dispose();
        _norms.Dispose();
        _queries.Dispose();
        _distances.Dispose();
        _indices.Dispose();
    }
}
