using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Models.StudentTeacher;
using Spectre.Console;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly bench --model FILE`: whole-model throughput of Uninformed Students. One run =
/// upload of a batch of random images, every teacher and student at every scale, the fused
/// scores, download of the per-scale maps and the host's multi-scale mean and max
/// (<see cref="StudentTeacherModel.Run"/>, what `predict` calls, image decoding excluded).
/// The first run (kernel compilation, weight packing) is reported apart; then the median of
/// <c>repeat</c> runs. tools/bench/students_model.py times PyTorch on the same file.
/// </summary>
internal sealed record ModelBenchResult(string Model, string Device, int Batch, int Height, int Width, int Channels,
    int[] Scales, double FirstMs, double MedianMs, double ImagesPerSecond, long PeakActivationBytes, long NaiveActivationBytes,
    long WeightBytes, int Repeat);

internal static class ModelBench
{
    public static ModelBenchResult Run(Device dev, string path, int batch, int? size, int repeat, IAnsiConsole console)
    {
        var sw = Stopwatch.StartNew();
        using var model = StudentTeacherModel.Load(path, dev, batch, size, size);
        var shape = model.InputShape;
        var rng = new Random(Environment.TickCount);
        var images = new float[shape.Elements];
        for (int i = 0; i < images.Length; i++) images[i] = (float)rng.NextDouble();
        model.Run(images);
        double first = sw.Elapsed.TotalMilliseconds;

        var times = new double[Math.Max(1, repeat)];
        for (int i = 0; i < times.Length; i++)
        {
            sw.Restart();
            model.Run(images);
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        double median = times[times.Length / 2];
        var cfg = model.Config;
        var result = new ModelBenchResult(Path.GetFileName(path), dev.Name, shape[0], shape[2], shape[3], shape[1],
            cfg.Scales.ToArray(), first, median, shape[0] * 1000 / median, model.Plan.PeakActivationBytes,
            model.Plan.NaiveActivationBytes, model.Plan.Graph.ConstantBytes, times.Length);
        console.WriteLine($"model:   {result.Model}: {cfg.InChannels} channels, scales {string.Join("/", cfg.Scales)}, " +
            $"M = {cfg.Students}, {model.Plan.Graph.Nodes.Count} nodes, {DeviceOutOfMemoryException.FormatBytes(result.WeightBytes)} of weights");
        console.WriteLine($"input:   {shape} (random images)");
        console.WriteLine($"memory:  peak activations {DeviceOutOfMemoryException.FormatBytes(result.PeakActivationBytes)} " +
            $"(without buffer reuse: {DeviceOutOfMemoryException.FormatBytes(result.NaiveActivationBytes)})");
        console.WriteLine($"time:    first run {first:F0} ms (load, plan, kernel compilation); then median {median:F2} ms over " +
            $"{times.Length} runs = {result.ImagesPerSecond:F2} images/s");
        return result;
    }
}
