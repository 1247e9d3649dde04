using System.Globalization;
using System.Text.Json;

namespace GpuAnomaly.Models.Ood;

/// <summary>
/// Training statistics of the baselines in <see cref="OodBaselines"/>, fitted in float64 on
/// in-distribution training features x [S, N] with labels, and the head W [C, N], b [C]:
/// <list type="bullet">
/// <item>ReactThreshold: the <c>ReactQuantile</c> (0.99) quantile of all S*N training activations, linear
/// interpolation as numpy.quantile (benchmark.py: np.quantile(feature_id_train, 0.99)).</item>
/// <item>ClassMeans [K, N] over the labels 0..K-1 (K = max label + 1, every class must occur) and Precision [N, N]
/// = (Sigma + ridge I)^-1 of the shared covariance of the class-centered features (1/S normalization, as
/// EmpiricalCovariance(assume_centered=True) on the centered features); ridge = MahalanobisRidge * trace(Sigma) / N
/// (benchmark.py uses sklearn's pinvh and no ridge; the ridge keeps a rank-deficient Sigma invertible).</item>
/// <item>RowSpace [rank, N]: an orthonormal basis of W's row space, for NuSA.</item>
/// <item>KlTemplates [T, C]: the mean softmax of the training samples predicted (argmax) as class
/// KlTemplateClasses[t], for the T classes predicted at least once (benchmark.py groups by predicted class).</item>
/// </list>
/// Stored as tensors "ood.class_means", "ood.precision", "ood.row_space", "ood.kl_templates",
/// "ood.kl_template_classes" and metadata "ood.react_quantile", "ood.react_threshold", "ood.mahalanobis_ridge".
/// </summary>
public sealed record OodBaselineFit(int FeatureDim, int Classes, double ReactQuantile, double ReactThreshold,
    double MahalanobisRidge, double[] ClassMeans, double[] Precision, double[] RowSpace, double[] KlTemplates, int[] KlTemplateClasses)
{
    public const double DefaultReactQuantile = 0.99;
    public const double DefaultMahalanobisRidge = 1e-6;

    public int MeanCount => ClassMeans.Length / FeatureDim;
    public int RowSpaceRank => RowSpace.Length / FeatureDim;

    public static OodBaselineFit Fit(ReadOnlySpan<float> features, ReadOnlySpan<int> labels, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        double reactQuantile = DefaultReactQuantile, double mahalanobisRidge = DefaultMahalanobisRidge)
    {
        int samples = labels.Length, c = b.Length;
        if (samples < 1 || c < 1 || features.Length % samples != 0)
            throw new ArgumentException($"ood_fit: {features.Length} feature values do not match {samples} labels");
        int n = features.Length / samples;
        if (w.Length != (long)c * n)
            throw new ArgumentException($"ood_fit: W has {w.Length} values, expected [{c}, {n}]");
        if (!(reactQuantile >= 0 && reactQuantile <= 1) || !(mahalanobisRidge >= 0))
            throw new ArgumentException($"ood_fit: quantile {reactQuantile} must be in [0, 1] and ridge {mahalanobisRidge} >= 0");

        double threshold = Quantile(features, reactQuantile);

        // Class means and the shared covariance of the class-centered features.
        int k = 0;
        foreach (int l in labels)
        {
            if (l < 0) throw new ArgumentException($"ood_fit: negative label {l}");
            k = Math.Max(k, l + 1);
        }
        var means = new double[(long)k * n];
        var counts = new int[k];
        for (int s = 0; s < samples; s++)
        {
            counts[labels[s]]++;
            for (int j = 0; j < n; j++) means[labels[s] * n + j] += features[s * n + j];
        }
        for (int i = 0; i < k; i++)
        {
            if (counts[i] == 0) throw new ArgumentException($"ood_fit: class {i} has no training sample (labels 0..{k - 1})");
            for (int j = 0; j < n; j++) means[i * n + j] /= counts[i];
        }
        var centered = new double[(long)samples * n];
        for (int s = 0; s < samples; s++)
            for (int j = 0; j < n; j++) centered[(long)s * n + j] = features[s * n + j] - means[labels[s] * n + j];
        var cov = VimFit.Covariance(centered, samples, n);
        double trace = 0;
        for (int j = 0; j < n; j++) trace += cov[(long)j * n + j];
        double ridge = mahalanobisRidge * trace / n;
        var eig = SymmetricEigen.Compute(cov, n);
        var precision = new double[(long)n * n];
        for (int i = 0; i < n; i++)
        {
            double inv = 1 / Math.Max(eig.Values[i] + ridge, double.Epsilon);
            if (!double.IsFinite(inv) || eig.Values[i] + ridge <= 0) continue; // a null direction without ridge: pinv drops it
            var v = eig.Vectors[i];
            for (int a = 0; a < n; a++)
            {
                double va = v[a] * inv;
                for (int bb = 0; bb < n; bb++) precision[(long)a * n + bb] += va * v[bb];
            }
        }

        var wd = VimFit.ToDouble(w);
        var rowSpace = PseudoInverse.RowSpaceBasis(wd, c, n).SelectMany(r => r).ToArray();

        // KL templates: mean softmax per predicted class.
        var sums = new double[(long)c * c];
        var predicted = new int[c];
        var logits = new double[c];
        for (int s = 0; s < samples; s++)
        {
            for (int i = 0; i < c; i++)
            {
                double acc = b[i];
                for (int j = 0; j < n; j++) acc += wd[i * n + j] * features[s * n + j];
                logits[i] = acc;
            }
            var p = OodBaselines.Softmax(logits);
            int arg = 0;
            for (int i = 1; i < c; i++) if (p[i] > p[arg]) arg = i;
            predicted[arg]++;
            for (int i = 0; i < c; i++) sums[arg * c + i] += p[i];
        }
        var classes = Enumerable.Range(0, c).Where(i => predicted[i] > 0).ToArray();
        var templates = new double[(long)classes.Length * c];
        for (int t = 0; t < classes.Length; t++)
            for (int i = 0; i < c; i++) templates[t * c + i] = sums[classes[t] * c + i] / predicted[classes[t]];

        return new OodBaselineFit(n, c, reactQuantile, threshold, mahalanobisRidge, means, precision, rowSpace, templates, classes);
    }

    /// <summary>numpy.quantile's default (linear): sorted a, position q (M - 1), interpolated between its neighbours.</summary>
    public static double Quantile(ReadOnlySpan<float> values, double q)
    {
        if (values.Length == 0) throw new ArgumentException("quantile: no values");
        var a = values.ToArray();
        Array.Sort(a);
        double pos = q * (a.Length - 1);
        int lo = (int)Math.Floor(pos);
        int hi = Math.Min(lo + 1, a.Length - 1);
        double frac = pos - lo;
        return a[lo] + frac * ((double)a[hi] - a[lo]);
    }

    public IReadOnlyDictionary<string, (float[] Data, int[] Shape)> ToTensors() => new Dictionary<string, (float[] Data, int[] Shape)>
    {
        ["ood.class_means"] = (ToFloat(ClassMeans), [MeanCount, FeatureDim]),
        ["ood.precision"] = (ToFloat(Precision), [FeatureDim, FeatureDim]),
        ["ood.row_space"] = (ToFloat(RowSpace), [RowSpaceRank, FeatureDim]),
        ["ood.kl_templates"] = (ToFloat(KlTemplates), [KlTemplateClasses.Length, Classes]),
        ["ood.kl_template_classes"] = ([.. KlTemplateClasses.Select(i => (float)i)], [KlTemplateClasses.Length]),
    };

    public string ToMetadataJson() => JsonSerializer.Serialize(new Dictionary<string, string>
    {
        ["ood.feature_dim"] = FeatureDim.ToString(CultureInfo.InvariantCulture),
        ["ood.classes"] = Classes.ToString(CultureInfo.InvariantCulture),
        ["ood.react_quantile"] = ReactQuantile.ToString("R", CultureInfo.InvariantCulture),
        ["ood.react_threshold"] = ReactThreshold.ToString("R", CultureInfo.InvariantCulture),
        ["ood.mahalanobis_ridge"] = MahalanobisRidge.ToString("R", CultureInfo.InvariantCulture),
    });

    public static OodBaselineFit FromTensors(IReadOnlyDictionary<string, (float[] Data, int[] Shape)> tensors, string metadataJson)
    {
        var meta = OodSerialization.ParseMetadata(metadataJson, "ood");
        int n = OodSerialization.Int(meta, "ood.feature_dim"), c = OodSerialization.Int(meta, "ood.classes");
        if (n < 1 || c < 1) throw new ArgumentException($"ood: metadata N = {n}, C = {c} are inconsistent");
        int RowsOf(string name) => tensors.TryGetValue(name, out var t) && t.Shape.Length >= 1 ? t.Shape[0]
            : throw new ArgumentException($"ood: tensor '{name}' is missing or has no shape");
        int k = RowsOf("ood.class_means"), rank = RowsOf("ood.row_space"), templates = RowsOf("ood.kl_templates");
        var classes = OodSerialization.Tensor(tensors, "ood.kl_template_classes", [templates]).Select(v => (int)v).ToArray();
        if (classes.Any(i => i < 0 || i >= c))
            throw new ArgumentException($"ood: tensor 'ood.kl_template_classes' holds a class outside 0..{c - 1}");
        return new OodBaselineFit(n, c,
            OodSerialization.Double(meta, "ood.react_quantile"), OodSerialization.Double(meta, "ood.react_threshold"),
            OodSerialization.Double(meta, "ood.mahalanobis_ridge"),
            ToDouble(OodSerialization.Tensor(tensors, "ood.class_means", [k, n])),
            ToDouble(OodSerialization.Tensor(tensors, "ood.precision", [n, n])),
            ToDouble(OodSerialization.Tensor(tensors, "ood.row_space", [rank, n])),
            ToDouble(OodSerialization.Tensor(tensors, "ood.kl_templates", [templates, c])),
            classes);
    }

    private static float[] ToFloat(double[] a) => [.. a.Select(v => (float)v)];
    private static double[] ToDouble(float[] a) => [.. a.Select(v => (double)v)];
}
