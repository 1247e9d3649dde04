using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Benchmarks;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.StudentTeacher;
using GpuAnomaly.Models.WindowVit;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly bench --model FILE`: whole-model throughput, image decoding excluded.
/// Uninformed Students: one run = upload of a batch of random images, every teacher and student at
/// every scale, the fused scores, download of the per-scale maps and the host's multi-scale mean and
/// max (<see cref="StudentTeacherModel.Run"/>, what `predict` calls); tools/bench/students_model.py
/// times PyTorch on the same file. window_vit: one run = upload, the whole classifier, download of
/// the pooled features and logits (<see cref="WindowVitModel.Run"/>, what `ood` calls before the
/// scores); tools/bench/window_vit_model.py times PyTorch on the same file.
/// The first run (kernel compilation, weight packing) is reported apart; then the median of
/// <c>repeat</c> runs.
/// </summary>
internal sealed record ModelBenchResult(string Model, string Architecture, string Device, int Batch, int Height, int Width, int Channels,
    int[] Scales, double FirstMs, double MedianMs, double ImagesPerSecond, long PeakActivationBytes, long NaiveActivationBytes,
    long WeightBytes, int Repeat)
{
    /// <summary>Per-node times (`--profile`), null without it.</summary>
    public IReadOnlyList<NodeProfile>? Profile { get; init; }
}

internal static class ModelBench
{
    public static ModelBenchResult Run(Device dev, string path, int batch, int? size, int repeat, bool profile, IAnsiConsole console)
    {
        string? architecture;
        using (var file = SafetensorsFile.Open(path))
            file.Metadata.TryGetValue("architecture", out architecture);
        if (architecture == WindowVitConfig.Architecture)
        {
            if (size is not null)
                throw new GpuAnomalyException($"{Path.GetFileName(path)}: --size does not apply to window_vit (its input size is fixed by its config)");
            return RunWindowVit(dev, path, batch, repeat, profile, console);
        }
        var sw = Stopwatch.StartNew();
        using var model = StudentTeacherModel.Load(path, dev, batch, size, size);
        var shape = model.InputShape;
        var (first, median) = Time(sw, shape, repeat, images => model.Run(images));
        var cfg = model.Config;
        var result = new ModelBenchResult(Path.GetFileName(path), UninformedStudentsConfig.Architecture, dev.Name, shape[0], shape[2], shape[3], shape[1],
            cfg.Scales.ToArray(), first, median, shape[0] * 1000 / median, model.Plan.PeakActivationBytes,
            model.Plan.NaiveActivationBytes, model.Plan.Graph.ConstantBytes, Math.Max(1, repeat));
        console.WriteLine($"model:   {result.Model}: {cfg.InChannels} channels, scales {string.Join("/", cfg.Scales)}, " +
            $"M = {cfg.Students}, {model.Plan.Graph.Nodes.Count} nodes, {DeviceOutOfMemoryException.FormatBytes(result.WeightBytes)} of weights");
        Report(result, shape, median, model.Plan, console);
        return profile ? result with { Profile = Profile(model.Plan, dev, repeat, console) } : result;
    }

    private static ModelBenchResult RunWindowVit(Device dev, string path, int batch, int repeat, bool profile, IAnsiConsole console)
    {
        var sw = Stopwatch.StartNew();
        using var model = WindowVitModel.Load(path, dev, batch);
        var shape = model.InputShape;
        var (first, median) = Time(sw, shape, repeat, images => model.Run(images));
        var cfg = model.Config;
        var result = new ModelBenchResult(Path.GetFileName(path), WindowVitConfig.Architecture, dev.Name, shape[0], shape[2], shape[3], shape[1],
            [], first, median, shape[0] * 1000 / median, model.Plan.PeakActivationBytes, model.Plan.NaiveActivationBytes,
            model.Plan.Graph.ConstantBytes, Math.Max(1, repeat));
        console.WriteLine($"model:   {result.Model}: window_vit C {cfg.EmbedDim}, {cfg.Heads} heads, {cfg.Blocks.Count} blocks, " +
            $"{cfg.NumClasses} classes, {model.Plan.Graph.Nodes.Count} nodes, {DeviceOutOfMemoryException.FormatBytes(result.WeightBytes)} of weights");
        Report(result, shape, median, model.Plan, console);
        return profile ? result with { Profile = Profile(model.Plan, dev, repeat, console) } : result;
    }

    /// <summary>
    /// `--profile`: the model's plan in an executor of its own (the model's keeps its buffers), random images, a wait
    /// after every node; prints the time per op kind and per node with its rate (GFLOP/s where the op counts its
    /// FLOPs, else the GB/s of reading its inputs and writing its output once).
    /// </summary>
    private static IReadOnlyList<NodeProfile> Profile(ExecutionPlan plan, Device dev, int repeat, IAnsiConsole console)
    {
        using var executor = new Executor(plan, dev);
        var rng = new Random(Environment.TickCount);
        foreach (var v in plan.Graph.Inputs)
        {
            var data = new float[v.Shape.Elements];
            for (int i = 0; i < data.Length; i++) data[i] = rng.NextSingle();
            executor.SetInput(v.Name, data);
        }
        var p = PlanProfile.Measure(executor, repeat);
        double total = p.TotalMs;
        string Rate(double flops, double bytes, double ms) =>
            ms <= 0 ? "" : flops > 0 ? $"{flops / (ms * 1e6):F1} GFLOP/s" : $"{bytes / (ms * 1e6):F1} GB/s";

        console.WriteLine($"profile: median of {p.Repeat} runs with a wait after every node: {total:F3} ms in all");
        var kinds = new Table().AddColumns("op", "nodes", "ms", "% of total", "rate");
        foreach (var (kind, count, ms, flops, bytes) in p.ByKind(plan.Graph))
            kinds.AddRow(Markup.Escape(kind), $"{count}", $"{ms:F3}", $"{100 * ms / total:F1}", Rate(flops, bytes, ms));
        console.Write(kinds);
        var nodes = new Table().AddColumns("#", "node", "op", "output", "ms", "% of total", "rate");
        foreach (var n in p.Nodes)
            nodes.AddRow($"{n.Index}", Markup.Escape(n.Name), Markup.Escape(n.Op), Markup.Escape(n.Output), $"{n.MedianMs:F4}",
                $"{100 * n.MedianMs / total:F1}", Rate(n.Flops, n.Bytes, n.MedianMs));
        console.Write(nodes);
        return p.Nodes;
    }

    /// <summary>
    /// Random images in [0, 1] of <paramref name="shape"/>; the first run (its time since <paramref name="sinceLoad"/>
    /// started: load, plan, kernel compilation included), then the median of <paramref name="repeat"/> runs.
    /// </summary>
    private static (double FirstMs, double MedianMs) Time(Stopwatch sinceLoad, Shape shape, int repeat, Action<float[]> run)
    {
        var rng = new Random(Environment.TickCount);
        var images = new float[shape.Elements];
        for (int i = 0; i < images.Length; i++) images[i] = (float)rng.NextDouble();
        run(images);
        double first = sinceLoad.Elapsed.TotalMilliseconds;
        return (first, Median(repeat, () => run(images)));
    }

    private static double Median(int repeat, Action run)
    {
        var times = new double[Math.Max(1, repeat)];
        var sw = new Stopwatch();
        for (int i = 0; i < times.Length; i++)
        {
            sw.Restart();
            run();
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return times[times.Length / 2];
    }

    private static void Report(ModelBenchResult result, Shape shape, double median, ExecutionPlan plan, IAnsiConsole console)
    {
        console.WriteLine($"input:   {shape} (random images)");
        console.WriteLine($"memory:  peak activations {DeviceOutOfMemoryException.FormatBytes(result.PeakActivationBytes)} " +
            $"(without buffer reuse: {DeviceOutOfMemoryException.FormatBytes(result.NaiveActivationBytes)})");
        console.WriteLine($"plan:    {plan.Schedule}");
        console.WriteLine($"time:    first run {result.FirstMs:F0} ms (load, plan, kernel compilation); then median {median:F2} ms over " +
            $"{result.Repeat} runs = {result.ImagesPerSecond:F2} images/s");
    }
}
