using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Kernels.Vim;
using GpuAnomaly.Models.WindowVit;

namespace GpuAnomaly.Models.Ood;

/// <summary>One image: the predicted class (the dataset's class id) and every OOD score (larger = more OOD).</summary>
public sealed record OodResult(int PredictedClass, OodScores Scores);

/// <summary>
/// Out-of-distribution scoring with a window_vit classifier (issue 6, METHODS.md §2): the model's graph ends with the
/// fused vim_score op, which gives ViM, MSP, MaxLogit, Energy and the residual norm on the device in one pass; the
/// baselines that need other statistics (Energy+ReAct, NuSA, Mahalanobis, KL matching) are computed on the host in
/// float64 from the features and logits the same run downloads. The fits live in the model file: tensors "vim.*" and
/// "ood.*", metadata keys <see cref="VimMetadataKey"/> and <see cref="BaselinesMetadataKey"/> (written by
/// `gpuanomaly fit-ood`, <see cref="WriteFitted"/>).
/// </summary>
public sealed class OodDetector : IDisposable
{
    public const string VimMetadataKey = "vim", BaselinesMetadataKey = "ood_baselines";

    private readonly double[] _w, _b;

    private OodDetector(WindowVitModel model, VimFitResult vim, OodBaselineFit baselines, float[] w, float[] b)
    {
        Model = model;
        Vim = vim;
        Baselines = baselines;
        _w = VimFit.ToDouble(w);
        _b = VimFit.ToDouble(b);
    }

    public WindowVitModel Model { get; }
    public VimFitResult Vim { get; }
    public OodBaselineFit Baselines { get; }

    /// <summary>Loads a fitted model (`gpuanomaly fit-ood` output) for batches of <paramref name="batch"/> images.</summary>
    public static OodDetector Load(string path, Device device, int batch)
    {
        VimFitResult vim;
        OodBaselineFit baselines;
        float[] w, b;
        using (var file = SafetensorsFile.Open(path))
        {
            if (!file.Metadata.TryGetValue(VimMetadataKey, out var vimJson) || !file.Metadata.TryGetValue(BaselinesMetadataKey, out var baseJson))
                throw new SafetensorsException(path, null, "has no OOD fit (__metadata__ 'vim' / 'ood_baselines'): run 'gpuanomaly fit-ood' first");
            var tensors = file.Tensors.Where(t => t.Name.StartsWith("vim.", StringComparison.Ordinal) || t.Name.StartsWith("ood.", StringComparison.Ordinal))
                .ToDictionary(t => t.Name, t => (file.ReadFloat32(t.Name), t.Shape.ToArray()));
            try
            {
                vim = VimFitResult.FromTensors(tensors, vimJson);
                baselines = OodBaselineFit.FromTensors(tensors, baseJson);
            }
            catch (ArgumentException e)
            {
                throw new SafetensorsException(path, null, $"the OOD fit is invalid: {e.Message}", e);
            }
            (w, b) = WindowVitModel.HeadWeights(file);
        }
        var model = WindowVitModel.Load(path, device, batch, vim: vim);
        return new OodDetector(model, vim, baselines, w, b);
    }

    /// <summary>Scores a batch [B, C, H, W] (pixel / 255); the first <paramref name="count"/> images are returned.</summary>
    public IReadOnlyList<OodResult> Run(float[] images, int count)
    {
        var o = Model.Run(images);
        int n = Model.Config.EmbedDim, c = _b.Length;
        var results = new List<OodResult>(count);
        for (int i = 0; i < count; i++)
        {
            var x = VimFit.ToDouble(o.Features.AsSpan(i * n, n));
            var logits = VimFit.ToDouble(o.Logits.AsSpan(i * c, c));
            var row = o.Vim!.AsSpan(i * VimParams.Outputs, VimParams.Outputs);
            int top = 0;
            for (int j = 1; j < c; j++) if (logits[j] > logits[top]) top = j;
            // The fused kernel's MSP, MaxLogit and Energy grow towards in-distribution (the paper's sign): negated here.
            var scores = new OodScores(
                Vim: row[VimParams.VimScore],
                VimProbability: row[VimParams.VimProbability],
                Msp: -row[VimParams.Msp],
                MaxLogit: -row[VimParams.MaxLogit],
                Energy: -row[VimParams.Energy],
                EnergyReact: OodBaselines.EnergyReact(x, _w, _b, Baselines.ReactThreshold),
                Residual: row[VimParams.Residual],
                Nusa: OodBaselines.Nusa(x, Baselines.RowSpace),
                Mahalanobis: OodBaselines.Mahalanobis(x, Baselines.ClassMeans, Baselines.Precision),
                KlMatching: OodBaselines.KlMatching(logits, Baselines.KlTemplates));
            results.Add(new OodResult(Model.Config.Classes.Count == c ? Model.Config.Classes[top] : top, scores));
        }
        return results;
    }

    /// <summary>Fits ViM and the baselines on in-distribution training features [S, N] with labels (logit indices).</summary>
    public static (VimFitResult Vim, OodBaselineFit Baselines) Fit(string modelPath, float[] features, int[] labels, int? principalDim = null)
    {
        float[] w, b;
        using (var file = SafetensorsFile.Open(modelPath)) (w, b) = WindowVitModel.HeadWeights(file);
        var vim = VimFit.Fit(features, labels.Length, w, b, b.Length, principalDim);
        var baselines = OodBaselineFit.Fit(features, labels, w, b);
        return (vim, baselines);
    }

    /// <summary>Writes a copy of <paramref name="source"/> with the fits (tensors and metadata) added, atomically.</summary>
    public static void WriteFitted(string source, string destination, VimFitResult vim, OodBaselineFit baselines, string fittedOn)
    {
        using var src = SafetensorsFile.Open(source);
        var meta = src.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        meta[VimMetadataKey] = vim.ToMetadataJson();
        meta[BaselinesMetadataKey] = baselines.ToMetadataJson();
        meta["ood_fitted_on"] = fittedOn;
        var fit = vim.ToTensors().Concat(baselines.ToTensors()).ToDictionary(kv => kv.Key, kv => kv.Value);
        var tensors = src.Tensors.Where(t => !fit.ContainsKey(t.Name))
            .Select(t => new SafetensorsTensor(t.Name, t.DTypeTag, [.. t.Shape], src.ReadBytes(t.Name)))
            .Concat(fit.Select(kv => new SafetensorsTensor(kv.Key, kv.Value.Shape, kv.Value.Data)))
            .ToList();
        SafetensorsWriter.Write(destination, tensors, meta);
    }

    public void Dispose() => Model.Dispose();
}
