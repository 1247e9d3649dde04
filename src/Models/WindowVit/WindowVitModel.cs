using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Kernels.Transformer;

namespace GpuAnomaly.Models.WindowVit;

/// <summary>One batch's pooled features [B, C] and logits [B, classes]; the per-block token maps when asked for.</summary>
/// <summary>
/// One batch's pooled features [B, C] and logits [B, classes]; the per-block token maps when asked for; and, for a model
/// loaded with a ViM fit, the fused scorer's rows [B, 6] (<see cref="Kernels.Vim.VimParams"/>'s columns).
/// </summary>
public sealed record WindowVitOutput(float[] Features, float[] Logits, IReadOnlyDictionary<string, float[]> Intermediates, float[]? Vim = null);

/// <summary>
/// The window-attention classifier (issue 5, docs/FORMATS.md `window_vit`): patch embedding -> blocks of pre-norm
/// attention (Swin windows, shifted windows or SparseViT sparse groups, fused) and a Mix-FFN (fc1, depthwise 3x3 + GELU,
/// fc2) -> final LayerNorm -> mean over tokens (the feature ViM scores) -> linear head (the logits). Every Linear and
/// Conv2d is float or ternary as the file stores it (<see cref="WeightLayers"/>).
/// </summary>
public sealed class WindowVitModel : IDisposable
{
    public const string FeatureOutput = "feature", LogitsOutput = "logits", VimOutput = "vim";
    private readonly Executor _executor;
    // The executor reuses its planned buffers: one Run at a time (named here so the error names the model).
    private readonly ExclusiveRun _exclusive = new(WindowVitConfig.Architecture);
    private readonly bool _intermediates;

    private WindowVitModel(Executor executor, WindowVitConfig config, Shape input, bool intermediates)
    {
        _executor = executor;
        Config = config;
        InputShape = input;
        _intermediates = intermediates;
    }

    public WindowVitConfig Config { get; }
    public Shape InputShape { get; }
    public ExecutionPlan Plan => _executor.Plan;
    public Device Device => _executor.Device;

    /// <param name="intermediates">Also output "tokens" (after the patch embedding) and "block{i}": for parity tests.</param>
    /// <param name="vim">A ViM fit of this model: the graph then ends with the fused vim_score op on the feature.</param>
    public static WindowVitModel Load(string path, Device device, int batch, bool intermediates = false, Ood.VimFitResult? vim = null)
    {
        if (batch < 1) throw new ArgumentException($"batch {batch} must be positive");
        using var file = SafetensorsFile.Open(path);
        var config = WindowVitConfig.Parse(path, file.Metadata);
        var layers = new WeightLayers(file);
        var g = new GraphBuilder();
        var input = new Shape(batch, config.InChannels, config.Height, config.Width);
        var x = g.Input("image", input);

        // (x - mean) / std as a 1x1 conv per channel: exact enough, and it keeps a ternary patch embedding possible.
        int ch = config.InChannels;
        var normW = new float[ch * ch];
        for (int c = 0; c < ch; c++) normW[c * ch + c] = 1f / config.Std;
        var normB = Enumerable.Repeat(-config.Mean / config.Std, ch).ToArray();
        x = g.Conv2d(x, g.Constant("normalize.weight", normW, new Shape(ch, ch, 1, 1)), g.Constant("normalize.bias", normB, new Shape(ch)),
            new Conv2dOptions(), "normalize");
        x = layers.Conv2d(g, x, "patch_embed.proj", new Conv2dOptions(stride: config.PatchSize));
        x = g.Apply("patch_embed.tokens", new TokensFromNchwOp(), x);
        x = LayerNorm(g, layers, x, "patch_embed.norm", config.LayerNormEps);
        if (intermediates) g.Output("tokens", x);

        int h = config.TokensH, w = config.TokensW;
        for (int i = 0; i < config.Blocks.Count; i++)
        {
            var b = config.Blocks[i];
            string name = $"blocks.{i}";
            var t = LayerNorm(g, layers, x, $"{name}.norm1", config.LayerNormEps);
            var qkv = layers.Linear(g, t, $"{name}.attn.qkv");
            // Padded tokens are zeros before the qkv Linear, so their q, k, v are its bias.
            var padQkv = layers.Contains($"{name}.attn.qkv.bias")
                ? g.Constant($"{name}.attn.pad_qkv", file.ReadFloat32($"{name}.attn.qkv.bias"), new Shape(3 * config.EmbedDim))
                : g.Constant($"{name}.attn.pad_qkv", new float[3 * config.EmbedDim], new Shape(3 * config.EmbedDim));
            Value attn;
            if (b.IsWindow)
            {
                string table = $"{name}.attn.relative_position_bias_table";
                bool hasBias = layers.Contains(table);
                var op = WindowAttentionOp.Window(h, w, config.Heads, b.WindowSize, b.Shift, hasBias);
                attn = hasBias ? g.Apply($"{name}.attn.core", op, qkv, padQkv, layers.Constant(g, table))
                               : g.Apply($"{name}.attn.core", op, qkv, padQkv);
            }
            else attn = g.Apply($"{name}.attn.core", WindowAttentionOp.Sparse(h, w, config.Heads, b.Sparsity), qkv, padQkv);
            x = g.Add(x, layers.Linear(g, attn, $"{name}.attn.proj"), $"{name}.residual1");

            t = LayerNorm(g, layers, x, $"{name}.norm2", config.LayerNormEps);
            t = layers.Linear(g, t, $"{name}.mlp.fc1");
            var dw = layers.Constant(g, $"{name}.mlp.dwconv.weight");
            t = layers.Contains($"{name}.mlp.dwconv.bias")
                ? g.Apply($"{name}.mlp.dwconv", new DwConvTokensOp(h, w, Epilogue.Gelu), t, dw, layers.Constant(g, $"{name}.mlp.dwconv.bias"))
                : g.Apply($"{name}.mlp.dwconv", new DwConvTokensOp(h, w, Epilogue.Gelu), t, dw);
            x = g.Add(x, layers.Linear(g, t, $"{name}.mlp.fc2"), $"{name}.residual2");
            if (intermediates) g.Output($"block{i}", x);
        }
        x = LayerNorm(g, layers, x, "norm", config.LayerNormEps);
        var feature = g.Apply("pool", new TokenMeanOp(), x);
        g.Output(FeatureOutput, feature);
        g.Output(LogitsOutput, layers.Linear(g, feature, "head"));
        if (vim is not null)
        {
            var (headW, headB) = HeadWeights(file);
            if (vim.FeatureDim != config.EmbedDim || vim.Classes != headB.Length)
                throw new SafetensorsException(path, null, $"the ViM fit is for N = {vim.FeatureDim}, C = {vim.Classes}; the model has {config.EmbedDim} features and {headB.Length} classes");
            g.Output(VimOutput, g.Apply("vim", new VimScoreOp((float)vim.Alpha), feature,
                g.Constant("vim.head.weight", headW, new Shape(headB.Length, config.EmbedDim)), g.Constant("vim.head.bias", headB, new Shape(headB.Length)),
                g.Constant("vim.origin", vim.Origin, new Shape(vim.FeatureDim)),
                g.Constant("vim.residual_basis_t", vim.ResidualBasisT, new Shape(vim.ResidualDim, vim.FeatureDim))));
        }
        return new WindowVitModel(new Executor(g.Build(), device), config, input, intermediates);
    }

    /// <summary>The head's W [C, N] and b [C] as floats (a ternary head is expanded to gamma * W_t).</summary>
    public static (float[] W, float[] B) HeadWeights(SafetensorsFile file)
    {
        var b = file.ReadFloat32("head.bias");
        if (file["head.weight"].DTypeTag != SafetensorsDTypes.Ternary) return (file.ReadFloat32("head.weight"), b);
        var (packed, shape) = file.ReadTernary("head.weight");
        var values = Kernels.Ternary.TernaryPacking.Unpack(packed, shape[0], shape[1]);
        var scale = file.ReadFloat32("head.weight" + WeightLayers.ScaleSuffix);
        var w = new float[values.Length];
        for (int i = 0; i < w.Length; i++) w[i] = values[i] * scale[scale.Length == 1 ? 0 : i / shape[1]];
        return (w, b);
    }

    private static Value LayerNorm(GraphBuilder g, WeightLayers layers, Value x, string name, float eps) =>
        g.Apply(name, new LayerNormOp(eps), x, layers.Constant(g, $"{name}.weight"), layers.Constant(g, $"{name}.bias"));

    /// <summary>Runs a batch [B, C, H, W] of images scaled pixel / 255.</summary>
    public WindowVitOutput Run(float[] images)
    {
        using var run = _exclusive.Enter();
        var outputs = _executor.RunToHost(("image", images));
        var rest = outputs.Where(kv => kv.Key is not (FeatureOutput or LogitsOutput or VimOutput)).ToDictionary(kv => kv.Key, kv => kv.Value);
        return new WindowVitOutput(outputs[FeatureOutput], outputs[LogitsOutput], _intermediates ? rest : new Dictionary<string, float[]>(),
            outputs.GetValueOrDefault(VimOutput));
    }

    public void Dispose() => _executor.Dispose();
}
