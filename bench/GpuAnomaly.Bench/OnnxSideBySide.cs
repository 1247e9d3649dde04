using System.Diagnostics;
using System.Text.Json;
using GpuAnomaly.Engine;
using GpuAnomaly.Models.StudentTeacher;
using GpuAnomaly.Models.WindowVit;
using Microsoft.ML.OnnxRuntime;

namespace GpuAnomaly.Bench;

/// <summary>
/// The CPU anchor for whole models (docs/PERFORMANCE.md "Whole models vs ONNX Runtime"): each model of a manifest
/// written by tools/export/export_onnx.py runs in our engine (the `cpu` device, through the model class a user
/// calls: StudentTeacherModel.Run / WindowVitModel.Run, upload and download included) and in ONNX Runtime (its
/// default CPU provider, all graph optimizations, one session per model), on the same random images.
/// Both must agree (relative L2 of every output at most 1e-4) before anything is timed. Timing is interleaved:
/// every round times ours and then ONNX Runtime (the order alternates between rounds), each alone in a child
/// process of this program (`onnx --time ours|ort`, same environment and CPU affinity), with warm-up runs and
/// then the median of <c>--repeat</c> runs (warm-up lasts at least <see cref="WarmupMs"/>, so that the other runtime's
/// spinning threads are idle again); the row reports the median and the minimum of the rounds' medians.
///
/// Threads: ours uses <see cref="Environment.ProcessorCount"/> workers, so the process must be started with
/// DOTNET_PROCESSOR_COUNT=T for T threads (tools/bench/onnx_vs_ort.sh does); ONNX Runtime gets
/// IntraOpNumThreads = T, InterOpNumThreads = 1, sequential execution, and with T > 1 also its inter-op mode
/// (ORT_PARALLEL, InterOpNumThreads = T, IntraOpNumThreads = 1): ours runs independent branches side by side
/// (ExecutionSchedule), so the ratio is taken against the faster of ONNX Runtime's two modes.
/// Run: DOTNET_PROCESSOR_COUNT=1 dotnet bench/GpuAnomaly.Bench/bin/Release/net10.0/GpuAnomaly.Bench.dll onnx
///      --manifest /tmp/onnx_models/manifest.json [--rounds 5] [--repeat 20] [--only NAME] [--ort-profile DIR]
/// </summary>
internal static class OnnxSideBySide
{
    private const double Tolerance = 1e-4;

    /// <summary>A manifest row; <c>Shape</c> (when given) is the input's shape, else [Batch, Channels, Height, Width].</summary>
    private sealed record Entry(string Onnx, string Model, int Batch, int Height, int Width, int Channels, string Architecture, int[]? Shape = null)
    {
        public int[] InputShape => Shape ?? [Batch, Channels, Height, Width];
        public string InputText => string.Join("x", InputShape);
    }

    /// <summary>The architecture of a manifest row our engine runs from the ONNX file itself (OnnxImporter), as `gpuanomaly run` does.</summary>
    private const string OnnxArchitecture = "onnx";

    public static int Run(string[] args)
    {
        string? manifest = null, only = null, ortProfile = null, timeSide = null;
        int rounds = 5, repeat = 20, warmup = 3, seed = 0;
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--manifest": manifest = args[++i]; break;
                case "--rounds": rounds = int.Parse(args[++i]); break;
                case "--repeat": repeat = int.Parse(args[++i]); break;
                case "--warmup": warmup = int.Parse(args[++i]); break;
                case "--only": only = args[++i]; break;
                case "--ort-profile": ortProfile = args[++i]; break;
                case "--time": timeSide = args[++i]; break;
                case "--seed": seed = int.Parse(args[++i]); break;
                default: throw new ArgumentException($"onnx: unknown option '{args[i]}' (--manifest, --rounds, --repeat, --warmup, --only, --ort-profile)");
            }
        if (manifest is null) throw new ArgumentException("onnx: --manifest FILE (written by tools/export/export_onnx.py --all DIR) is required");
        int threads = Environment.ProcessorCount;
        string dir = Path.GetDirectoryName(Path.GetFullPath(manifest))!;
        var entries = JsonSerializer.Deserialize<List<Entry>>(File.ReadAllText(manifest), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        if (timeSide is not null) return TimeOneSide(timeSide, entries.Single(e => Path.GetFileNameWithoutExtension(e.Onnx) == only), dir, seed, warmup, repeat);

        Console.WriteLine($"onnx side by side: {threads} thread(s) each (ours: DOTNET_PROCESSOR_COUNT / Environment.ProcessorCount = {threads}; " +
                          $"ONNX Runtime {OrtEnv.Instance().GetVersionString()}: intra-op {threads}, inter-op 1, sequential, ORT_ENABLE_ALL" +
                          (threads > 1 ? $"; ORT par.: ORT_PARALLEL, inter-op {threads}, intra-op 1; ORT/ours: the faster ONNX Runtime mode over ours)" : ")"));
        Console.WriteLine($"runtime .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, " +
                          $"{rounds} rounds x (warm-up {warmup} runs and {WarmupMs} ms, median of {repeat}), one process per runtime and round, order alternating; started {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine($"{"model",-26} {"input",-16} {"thr",3} {"ours ms (med, min)",20} {"ORT ms (med, min)",20} {"ORT par. (med, min)",20} {"ORT/ours",8} {"max rel L2",10}");
        bool allAgree = true;
        using var dev = new CpuDevice();
        foreach (var e in entries)
        {
            string name = Path.GetFileNameWithoutExtension(e.Onnx);
            if (only is not null && !name.Contains(only, StringComparison.Ordinal)) continue;
            int imageSeed = Environment.TickCount;
            var images = Images(e, imageSeed);

            var ours = Ours.Load(e, dev, dir);
            using var options = OrtOptions(threads);
            if (ortProfile is not null)
            {
                Directory.CreateDirectory(ortProfile);
                // Prefix first: enabling profiling hands ONNX Runtime the prefix set at that moment (set after, the
                // files landed in the working directory).
                options.ProfileOutputPathPrefix = Path.Combine(ortProfile, $"{name}_t{threads}");
                options.EnableProfiling = true;
            }
            var session = new InferenceSession(Path.Combine(dir, e.Onnx), options);
            var ort = new Ort(session, images, Array.ConvertAll(e.InputShape, d => (long)d));

            // Agreement first: every output of ours against ONNX Runtime's of the same name.
            var mine = ours.Run(images);
            var theirs = ort.Run();
            double worst = 0;
            foreach (var (output, values) in mine)
            {
                if (!theirs.TryGetValue(output, out var other))
                    throw new InvalidOperationException($"{e.Onnx}: ONNX Runtime has no output '{output}' (it has {string.Join(", ", theirs.Keys)})");
                double err = RelativeL2(values, other);
                worst = double.IsNaN(err) ? double.PositiveInfinity : Math.Max(worst, err);
            }
            bool agree = worst <= Tolerance;
            allAgree &= agree;

            if (ortProfile is not null)
            {
                for (int i = 0; i < 10; i++) ort.Run();
                Console.Error.WriteLine($"ONNX Runtime profile: {session.EndProfiling()}");
            }
            // Each runtime is timed alone in its own process: in one process ONNX Runtime's spinning intra-op threads
            // and .NET's pool threads take cores from each other (see WarmupMs).
            ours.Dispose();
            session.Dispose();
            // With several threads ONNX Runtime is also timed in its inter-op mode (ORT_PARALLEL), and the row's
            // ratio is against the faster of its two modes: ours runs independent branches side by side there too.
            string[] sides = threads > 1 ? ["ours", "ort", "ort-parallel"] : ["ours", "ort"];
            var medians = sides.Select(_ => new double[rounds]).ToArray();
            for (int r = 0; r < rounds; r++)
                for (int k = 0; k < sides.Length; k++)
                {
                    int side = (k + r) % sides.Length; // each round starts with the next side
                    medians[side][r] = TimeInChild(sides[side], manifest, name, imageSeed, warmup, repeat);
                }
            double om = Median(medians[0]), rm = Median(medians[1]);
            double pm = threads > 1 ? Median(medians[2]) : double.NaN, best = threads > 1 ? Math.Min(rm, pm) : rm;
            string parallel = threads > 1 ? $"{pm:F3}, {medians[2].Min():F3}" : "(1 thread)";
            Console.WriteLine($"{name,-26} {e.InputText,-16} {threads,3} " +
                              $"{$"{om:F3}, {medians[0].Min():F3}",20} {$"{rm:F3}, {medians[1].Min():F3}",20} {parallel,20} {best / om,8:F2} {worst,10:E1}" +
                              (agree ? "" : $"  DISAGREE (> {Tolerance:E0})"));
        }
        if (!allAgree) Console.WriteLine($"FAIL: some outputs differ from ONNX Runtime's by more than relative L2 {Tolerance:E0}");
        return allAgree ? 0 : 1;
    }

    /// <summary>Our side: the model class a user calls, and its outputs by the graph's output names.</summary>
    private sealed class Ours : IDisposable
    {
        private readonly StudentTeacherModel? _students;
        private readonly WindowVitModel? _vit;
        private readonly Executor? _onnx;
        private readonly string? _onnxInput;

        private Ours(StudentTeacherModel? students, WindowVitModel? vit, Executor? onnx = null, string? onnxInput = null) =>
            (_students, _vit, _onnx, _onnxInput) = (students, vit, onnx, onnxInput);

        public static Ours Load(Entry e, Device dev, string dir) => e.Architecture switch
        {
            UninformedStudentsConfig.Architecture => new(StudentTeacherModel.Load(e.Model, dev, e.Batch, e.Height, e.Width), null),
            WindowVitConfig.Architecture => new(null, WindowVitModel.Load(e.Model, dev, e.Batch)),
            OnnxArchitecture => FromOnnx(Path.Combine(dir, e.Onnx), e.InputShape, dev),
            _ => throw new ArgumentException($"{e.Onnx}: architecture '{e.Architecture}' is not benchmarked"),
        };

        private static Ours FromOnnx(string path, int[] shape, Device dev)
        {
            var model = GpuAnomaly.Engine.Onnx.OnnxModel.Load(path);
            string input = model.Graph.RuntimeInputs.Single().Name;
            var imported = GpuAnomaly.Engine.Onnx.OnnxImporter.Import(model, new GpuAnomaly.Engine.Onnx.OnnxImportOptions
            {
                InputShapes = new Dictionary<string, int[]> { [input] = shape },
            });
            return new(null, null, new Executor(imported.Graph ?? throw new ArgumentException($"{path}: every output folded"), dev), input);
        }

        public Dictionary<string, float[]> Run(float[] images)
        {
            if (_onnx is not null)
            {
                _onnx.SetInput(_onnxInput!, images);
                _onnx.Run();
                return _onnx.Outputs.ToDictionary(o => o.Key, o => o.Value.ToArray());
            }
            if (_students is not null)
                return _students.Run(images).ScaleMaps.ToDictionary(m => StudentTeacherModel.ScaleOutput(m.Key), m => m.Value);
            var o = _vit!.Run(images);
            return new() { [WindowVitModel.FeatureOutput] = o.Features, [WindowVitModel.LogitsOutput] = o.Logits };
        }

        public void Dispose()
        {
            _students?.Dispose();
            _vit?.Dispose();
            _onnx?.Dispose();
        }
    }

    /// <summary>ONNX Runtime's side: one input bound to the images' array, every output copied to host arrays (as ours returns them).</summary>
    private sealed class Ort(InferenceSession session, float[] images, long[] shape)
    {
        private readonly string[] _inputs = [session.InputNames[0]];
        private readonly string[] _outputs = [.. session.OutputNames];
        private readonly RunOptions _run = new();

        public Dictionary<string, float[]> Run()
        {
            using var input = OrtValue.CreateTensorValueFromMemory(images, shape);
            using var results = session.Run(_run, _inputs, [input], _outputs);
            var outputs = new Dictionary<string, float[]>(_outputs.Length);
            for (int i = 0; i < _outputs.Length; i++) outputs[_outputs[i]] = results[i].GetTensorDataAsSpan<float>().ToArray();
            return outputs;
        }
    }

    private static float[] Images(Entry e, int seed)
    {
        var rng = new Random(seed);
        var images = new float[e.InputShape.Aggregate(1L, (a, d) => a * d)];
        for (int i = 0; i < images.Length; i++) images[i] = rng.NextSingle();
        return images;
    }

    private static SessionOptions OrtOptions(int threads) => new()
    {
        IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };

    /// <summary>
    /// ONNX Runtime's inter-op mode: independent nodes side by side on <paramref name="threads"/> inter-op threads,
    /// each op on one thread (intra-op 1), as our concurrent lanes run them.
    /// </summary>
    private static SessionOptions OrtParallelOptions(int threads) => new()
    {
        IntraOpNumThreads = 1, // intra-op 2 measured slower still (US default b1: 24.0 ms against 14.5 with 1, 9.9 sequential)
        InterOpNumThreads = threads, ExecutionMode = ExecutionMode.ORT_PARALLEL,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };

    /// <summary>Runs this program as `onnx --time SIDE` (same environment, CPU affinity inherited) and reads its median.</summary>
    private static double TimeInChild(string side, string manifest, string name, int seed, int warmup, int repeat)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { typeof(OnnxSideBySide).Assembly.Location, "onnx", "--time", side, "--manifest", manifest, "--only", name,
                     "--seed", $"{seed}", "--warmup", $"{warmup}", "--repeat", $"{repeat}" })
            start.ArgumentList.Add(a);
        using var child = Process.Start(start)!;
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        if (child.ExitCode != 0 || !double.TryParse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture, out double ms))
            throw new InvalidOperationException($"onnx --time {side} {name}: exit {child.ExitCode}, output '{output.Trim()}'");
        return ms;
    }

    /// <summary>The child's side: one runtime only, warm-up, then the median of <paramref name="repeat"/> runs in ms on stdout.</summary>
    private static int TimeOneSide(string side, Entry e, string dir, int seed, int warmup, int repeat)
    {
        var images = Images(e, seed);
        double ms;
        if (side == "ours")
        {
            using var dev = new CpuDevice();
            using var ours = Ours.Load(e, dev, dir);
            ms = Median(warmup, repeat, () => ours.Run(images));
        }
        else if (side is "ort" or "ort-parallel")
        {
            using var options = side == "ort" ? OrtOptions(Environment.ProcessorCount) : OrtParallelOptions(Environment.ProcessorCount);
            using var session = new InferenceSession(Path.Combine(dir, e.Onnx), options);
            var ort = new Ort(session, images, Array.ConvertAll(e.InputShape, d => (long)d));
            ms = Median(warmup, repeat, () => ort.Run());
        }
        else throw new ArgumentException($"onnx --time: side '{side}' is not ours, ort or ort-parallel");
        Console.WriteLine(ms.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        return 0;
    }

    private static double RelativeL2(float[] a, float[] b)
    {
        if (a.Length != b.Length) return double.PositiveInfinity;
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - b[i];
            num += d * d;
            den += (double)b[i] * b[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    /// <summary>
    /// Warm-up lasts at least this long (and at least the given number of runs), so that thread pools reach their
    /// steady state. Each runtime runs alone in its own process: ONNX Runtime's intra-op threads spin after a run
    /// (session.intra_op.allow_spinning, on by default: its best latency) and, in one process, take a core from
    /// whatever runs next. Measured on window_vit at batch 1, 2 threads, in one process: ours 0.75 ms alone,
    /// 1.01 ms right after ONNX Runtime's block; ONNX Runtime with spinning off 1.04 ms instead of 0.73.
    /// </summary>
    private const int WarmupMs = 300;

    private static double Median(int warmup, int repeat, Action run)
    {
        long w0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < warmup || Stopwatch.GetElapsedTime(w0).TotalMilliseconds < WarmupMs; i++) run();
        var times = new double[repeat];
        for (int i = 0; i < repeat; i++)
        {
            long t = Stopwatch.GetTimestamp();
            run();
            times[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
        return Median(times);
    }

    private static double Median(double[] values)
    {
        var s = (double[])values.Clone();
        Array.Sort(s);
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }
}
