using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Models.StudentTeacher;

namespace GpuAnomaly.Bench;

/// <summary>
/// `lanes MODEL [batch] [blocks]`: the concurrent lanes against one node at a time, on one Uninformed Students model in
/// one process, interleaved: every block times the sequential plan (lanes 1) and then the concurrent plan (lanes =
/// threads) on the same images, each the median of its runs, and the summary gives the median block and how many blocks
/// the lanes won. Interleaving in one process is what makes the comparison hold on a host whose cores slow down for
/// seconds at a time (docs/PERFORMANCE.md, "Whole models vs ONNX Runtime").
/// Run: DOTNET_PROCESSOR_COUNT=2 taskset -c 0,1 dotnet bench/GpuAnomaly.Bench/bin/Release/net10.0/GpuAnomaly.Bench.dll
///      lanes src/Models/Default/uninformed_students_default.safetensors 1 20
/// </summary>
internal static class LanesBench
{
    public static void Run(string[] args)
    {
        if (args.Length < 1) throw new ArgumentException("lanes MODEL [batch] [blocks]: MODEL is an Uninformed Students safetensors file");
        int batch = args.Length > 1 ? int.Parse(args[1]) : 1, blocks = args.Length > 2 ? int.Parse(args[2]) : 20;
        int threads = Environment.ProcessorCount;
        var variants = new[] { 1, threads }.Select(lanes =>
        {
            var device = new CpuDevice();
            device.SetLanes(lanes);
            return (Lanes: lanes, Device: device, Model: StudentTeacherModel.Load(args[0], device, batch));
        }).ToArray();
        var shape = variants[0].Model.InputShape;
        var rng = new Random(Environment.TickCount);
        var images = new float[shape.Elements];
        for (int i = 0; i < images.Length; i++) images[i] = rng.NextSingle();
        Console.WriteLine($"lanes: {Path.GetFileName(args[0])}, input {shape}, {threads} threads, {blocks} interleaved blocks");
        foreach (var v in variants)
            Console.WriteLine($"  lanes {v.Lanes}: {v.Model.Plan.Schedule}; activations {v.Model.Plan.PeakActivationBytes / 1048576.0:F2} MiB");

        foreach (var v in variants)
            for (long t0 = Stopwatch.GetTimestamp(); Stopwatch.GetElapsedTime(t0).TotalMilliseconds < 500;) v.Model.Run(images);
        int runs = Math.Max(5, (int)(200 / Time(variants[0].Model, images)));
        var medians = variants.Select(_ => new double[blocks]).ToArray();
        for (int b = 0; b < blocks; b++)
            for (int k = 0; k < variants.Length; k++)
            {
                var times = new double[runs];
                for (int i = 0; i < runs; i++) times[i] = Time(variants[k].Model, images);
                medians[k][b] = Median(times);
            }
        int wins = Enumerable.Range(0, blocks).Count(b => medians[1][b] < medians[0][b]);
        for (int k = 0; k < variants.Length; k++)
            Console.WriteLine($"  lanes {variants[k].Lanes}: median block {Median(medians[k]):F3} ms (blocks of {runs} runs: min {medians[k].Min():F3}, max {medians[k].Max():F3})");
        Console.WriteLine($"  lanes {threads} faster in {wins} of {blocks} blocks");
        foreach (var v in variants)
        {
            v.Model.Dispose();
            v.Device.Dispose();
        }
    }

    private static double Time(StudentTeacherModel model, float[] images)
    {
        long t = Stopwatch.GetTimestamp();
        model.Run(images);
        return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
    }

    private static double Median(double[] values)
    {
        var s = (double[])values.Clone();
        Array.Sort(s);
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }
}
