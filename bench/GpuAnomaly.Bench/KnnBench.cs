using System.Runtime.Intrinsics;
using System.Text;
using GpuAnomaly.Kernels.Knn;

namespace GpuAnomaly.Bench;

/// <summary>
/// Exact kNN (squared L2, FAISS IndexFlatL2 semantics) on the cpu: <see cref="KnnCpu.Forward"/> with the bank's
/// norms computed once (as a memory bank holds them), the timed part being the search alone, as FAISS's
/// <c>index.search</c> is (IndexFlatL2 also keeps the norms of what was added). tools/bench/knn_vs_faiss.sh runs it
/// against FAISS on the same .npy files.
/// Quick: dotnet bench/GpuAnomaly.Bench/bin/Release/net10.0/GpuAnomaly.Bench.dll knn-cpu
///     [--q 784 --n 100000 --d 128 --k 9 --seed 1] | [--queries q.npy --bank b.npy --k 9]
///     [--reps 10] [--warmup-ms 500] [--out prefix]   (prefix.indices.npy, prefix.distances.npy)
/// The thread count is the process's: Environment.ProcessorCount sizes the task split and the thread pool, so run it
/// under `taskset -c 0` (and DOTNET_PROCESSOR_COUNT=1) for one core, as the conv quick mode is run.
/// </summary>
public static class KnnBench
{
    public static void Quick(string[] args)
    {
        var o = Options(args);
        int k = int.Parse(o.GetValueOrDefault("k", "9"));
        int reps = int.Parse(o.GetValueOrDefault("reps", "10"));
        int warmupMs = int.Parse(o.GetValueOrDefault("warmup-ms", "500"));
        float[] queries, bank;
        int q, n, d;
        string source;
        if (o.TryGetValue("queries", out var qf) && o.TryGetValue("bank", out var bf))
        {
            (queries, q, d) = Npy.ReadF32Matrix(qf);
            (bank, n, int db) = Npy.ReadF32Matrix(bf);
            if (db != d) throw new ArgumentException($"knn-cpu: queries have D={d}, the bank D={db}");
            source = $"{qf}, {bf}";
        }
        else
        {
            q = int.Parse(o.GetValueOrDefault("q", "784"));
            n = int.Parse(o.GetValueOrDefault("n", "100000"));
            d = int.Parse(o.GetValueOrDefault("d", "128"));
            int seed = int.Parse(o.GetValueOrDefault("seed", "1"));
            var rng = new Random(seed);
            queries = Uniform(rng, (long)q * d);
            bank = Uniform(rng, (long)n * d);
            source = $"uniform [0, 1), seed {seed}";
        }
        var p = KnnParams.Create(q, n, d, k);
        var norms = new float[n];
        KnnCpu.RowNorms(n, d, bank, norms);
        var dist = new float[q * k];
        var idx = new int[q * k];
        void Run() => KnnCpu.Forward(p, queries, bank, norms, dist, idx);
        var (ms, min) = QuickTimer.Measure(reps, Run, warmupMs);
        Console.WriteLine($"knn cpu (GpuAnomaly), {p}, {Environment.ProcessorCount} threads, avx512={Vector512.IsHardwareAccelerated}, " +
            $"data: {source}, median of {reps}");
        Console.WriteLine($"RESULT ours Q={q} N={n} D={d} k={k} threads={Environment.ProcessorCount} median_ms={ms:F3} min_ms={min:F3} " +
            $"gflops={p.Flops / ms / 1e6:F1}");
        if (o.TryGetValue("out", out var prefix))
        {
            Npy.Write(prefix + ".indices.npy", "<i4", q, k, idx.AsSpan());
            Npy.Write(prefix + ".distances.npy", "<f4", q, k, dist.AsSpan());
        }
    }

    private static Dictionary<string, string> Options(string[] args)
    {
        var o = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--") || i + 1 >= args.Length)
                throw new ArgumentException($"knn-cpu: expected --name value pairs, got '{args[i]}'");
            o[args[i][2..]] = args[++i];
        }
        return o;
    }

    private static float[] Uniform(Random rng, long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = rng.NextSingle();
        return a;
    }
}

/// <summary>The few .npy files the benches exchange with Python: 2-D, C order, little-endian float32 / int32.</summary>
internal static class Npy
{
    public static (float[] Data, int Rows, int Cols) ReadF32Matrix(string path)
    {
        using var f = File.OpenRead(path);
        using var r = new BinaryReader(f);
        var magic = r.ReadBytes(6);
        if (magic[0] != 0x93 || Encoding.ASCII.GetString(magic, 1, 5) != "NUMPY") throw new InvalidDataException($"{path}: not a .npy file");
        int major = r.ReadByte(); r.ReadByte();
        int headerLen = major == 1 ? r.ReadUInt16() : (int)r.ReadUInt32();
        string header = Encoding.Latin1.GetString(r.ReadBytes(headerLen));
        if (!header.Contains("'descr': '<f4'") || !header.Contains("'fortran_order': False"))
            throw new InvalidDataException($"{path}: want C-order '<f4', header {header.Trim()}");
        int s0 = header.IndexOf("'shape': (", StringComparison.Ordinal) + 10, s1 = header.IndexOf(')', s0);
        var dims = header[s0..s1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (dims.Length != 2) throw new InvalidDataException($"{path}: want a 2-D array, header {header.Trim()}");
        int rows = int.Parse(dims[0]), cols = int.Parse(dims[1]);
        var data = new float[(long)rows * cols];
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan());
        f.ReadExactly(bytes);
        return (data, rows, cols);
    }

    public static void Write<T>(string path, string descr, int rows, int cols, ReadOnlySpan<T> data) where T : unmanaged
    {
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}";
        int total = 10 + dict.Length + 1;
        string header = dict + new string(' ', (64 - total % 64) % 64) + "\n";
        using var f = File.Create(path);
        f.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        f.Write(BitConverter.GetBytes((ushort)header.Length));
        f.Write(Encoding.ASCII.GetBytes(header));
        f.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data));
    }
}
