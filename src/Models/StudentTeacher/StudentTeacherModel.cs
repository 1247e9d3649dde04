using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.Anomaly;
using GpuAnomaly.Models.PatchNetworks;

namespace GpuAnomaly.Models.StudentTeacher;

/// <summary>One batch's anomaly maps [B, H, W] (the multi-scale average), image scores [B] (the map's maximum) and each scale's map.</summary>
public sealed record StudentTeacherOutput(float[] Map, float[] ImageScores, IReadOnlyDictionary<int, float[]> ScaleMaps);

/// <summary>
/// Uninformed Students (Bergmann et al., CVPR 2020; METHODS.md §1) as one graph: for every scale p, the
/// teacher and M students run densely (DensePatchNetwork), and the fused student_teacher_score op turns
/// their descriptors into the per-pixel score (e - e_mean)/e_std + (v - v_mean)/v_std in one pass. The
/// multi-scale map (the mean over scales) and the image score (its maximum) are taken on the host from
/// the downloaded per-scale maps: B x H x W floats per scale, negligible next to the networks.
/// </summary>
public sealed class StudentTeacherModel : IAnomalyModel
{
    private readonly Executor _executor;
    // The executor reuses its planned buffers: one Run at a time (named here so the error names the model).
    private readonly ExclusiveRun _exclusive = new(UninformedStudentsConfig.Architecture);

    private StudentTeacherModel(Executor executor, UninformedStudentsConfig config, Shape input)
    {
        _executor = executor;
        Config = config;
        InputShape = input;
    }

    public UninformedStudentsConfig Config { get; }
    public Shape InputShape { get; }
    public ExecutionPlan Plan => _executor.Plan;
    public Device Device => _executor.Device;

    string IAnomalyModel.Architecture => UninformedStudentsConfig.Architecture;
    public MinMaxNormalization? ImageScore => Config.ImageScore;
    public MinMaxNormalization? PixelScore => Config.PixelScore;

    public AnomalyMaps Score(float[] images)
    {
        var o = Run(images);
        return new AnomalyMaps(o.Map, o.ImageScores);
    }

    public static string ScaleOutput(int p) => $"p{p}.score";

    /// <summary>Loads a model file for batches of <paramref name="batch"/> images (the model's input size unless given).</summary>
    public static StudentTeacherModel Load(string path, Device device, int batch, int? height = null, int? width = null)
    {
        if (batch < 1 || height < 1 || width < 1) throw new ArgumentException($"batch {batch} and image size {height}x{width} must be positive");
        using var file = SafetensorsFile.Open(path);
        var config = UninformedStudentsConfig.Parse(path, file.Metadata);
        if (config.Students > Kernels.StudentTeacher.StudentTeacherScoreParams.MaxStudents)
            throw new SafetensorsException(path, null, $"{config.Students} students per scale; the fused scoring kernel takes at most {Kernels.StudentTeacher.StudentTeacherScoreParams.MaxStudents}");

        var layers = new WeightLayers(file);
        var g = new GraphBuilder();
        var input = new Shape(batch, config.InChannels, height ?? config.Height, width ?? config.Width);
        var image = g.Input("image", input);
        foreach (int p in config.Scales)
        {
            var teacher = DensePatchNetwork.Build(g, image, p, $"teacher.p{p}.", layers);
            var students = Enumerable.Range(0, config.Students)
                .Select(i => DensePatchNetwork.Build(g, image, p, $"students.{i}.p{p}.", layers)).ToArray();
            var (mu, muShape) = file.ReadWeight($"teacher.p{p}.mu");
            var (sigma, sigmaShape) = file.ReadWeight($"teacher.p{p}.sigma");
            foreach (float s in sigma)
                if (!(s > 0)) throw new SafetensorsException(path, $"teacher.p{p}.sigma", $"holds {s}; standard deviations must be positive");
            var stats = config.Validation[p];
            g.Output(ScaleOutput(p), g.StudentTeacherScore(teacher, students,
                g.Constant($"teacher.p{p}.mu", mu, muShape), g.Constant($"teacher.p{p}.sigma", sigma, sigmaShape),
                (float)stats.EMean, (float)stats.EStd, (float)stats.VMean, (float)stats.VStd, $"p{p}.score"));
        }
        return new StudentTeacherModel(new Executor(g.Build(), device), config, input);
    }

    /// <summary>Runs a batch [B, C, H, W] of images scaled as the config says (pixel / 255).</summary>
    public StudentTeacherOutput Run(float[] images)
    {
        using var run = _exclusive.Enter();
        var outputs = _executor.RunToHost(("image", images));
        int b = InputShape[0], pixels = InputShape[2] * InputShape[3];
        var scaleMaps = Config.Scales.ToDictionary(p => p, p => outputs[ScaleOutput(p)]);
        var map = new float[b * pixels];
        foreach (var m in scaleMaps.Values)
            for (int i = 0; i < map.Length; i++) map[i] += m[i];
        float inv = 1f / Config.Scales.Length;
        var scores = new float[b];
        for (int n = 0; n < b; n++)
        {
            float max = float.NegativeInfinity;
            for (int i = n * pixels; i < (n + 1) * pixels; i++)
            {
                map[i] *= inv;
                max = Math.Max(max, map[i]);
            }
            scores[n] = max;
        }
        return new StudentTeacherOutput(map, scores, scaleMaps);
    }

    public void Dispose() => _executor.Dispose();
}
