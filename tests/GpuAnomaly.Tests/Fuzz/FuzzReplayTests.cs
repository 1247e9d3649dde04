using GpuAnomaly.Fuzz;
using Xunit;

namespace GpuAnomaly.Tests.Fuzz;

/// <summary>
/// The fuzz targets of fuzz/FuzzTargets.cs without the fuzzer: every seed (fuzz/corpus/TARGET) and every saved
/// crash (fuzz/regressions/TARGET) is replayed, then a short fixed-seed mutation run (CI's fuzzing) feeds
/// deterministic byte mutations of the seeds. A target swallows only its parser's typed error, so any other
/// exception fails the test, naming the input (docs/FUZZING.md).
/// </summary>
public sealed class FuzzReplayTests : IDisposable
{
    /// <summary>Mutations per seed file in <see cref="FixedSeedMutations_OnlyTypedErrors"/>.</summary>
    private const int MutationsPerSeed = 2000;

    public void Dispose() => FuzzTargets.DeleteScratch();

    public static TheoryData<string, string> Inputs()
    {
        var data = new TheoryData<string, string>();
        foreach (var target in FuzzTargets.Names)
            foreach (var folder in new[] { "corpus", "regressions" })
            {
                string dir = Path.Combine(FuzzFolder(), folder, target);
                if (!Directory.Exists(dir)) continue;
                foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                    data.Add(target, Path.GetRelativePath(FuzzFolder(), file));
            }
        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void SeedsAndRegressions_OnlyTypedErrors(string target, string file)
    {
        var run = FuzzTargets.Get(target)!;
        run(File.ReadAllBytes(Path.Combine(FuzzFolder(), file)));
    }

    /// <summary>Each saved crash now fails with its parser's typed error (the replay above only checks that nothing else escapes).</summary>
    [Fact]
    public void Regressions_FailWithTheTypedError()
    {
        foreach (var file in Files("regressions", "image"))
            Assert.Throws<GpuAnomaly.Cli.Images.ImageDecodeException>(() => GpuAnomaly.Cli.Images.ImageFile.Decode(file, File.ReadAllBytes(file), 3));
        foreach (var file in Files("regressions", "safetensors"))
            Assert.Throws<GpuAnomaly.Engine.Weights.SafetensorsException>(() =>
            {
                using var f = GpuAnomaly.Engine.Weights.SafetensorsFile.Open(file);
                foreach (var e in f.Tensors)
                    if (e.DTypeTag == GpuAnomaly.Engine.Weights.SafetensorsDTypes.Ternary) f.ReadTernary(e.Name);
                    else f.ReadWeight(e.Name);
            });

        static string[] Files(string folder, string target) =>
            Directory.Exists(Path.Combine(FuzzFolder(), folder, target)) ? Directory.GetFiles(Path.Combine(FuzzFolder(), folder, target)) : [];
    }

    [Fact]
    public void EveryTargetHasSeeds()
    {
        foreach (var target in FuzzTargets.Names)
            Assert.True(Directory.GetFiles(Path.Combine(FuzzFolder(), "corpus", target)).Length >= 3, $"fuzz/corpus/{target} has fewer than 3 seeds");
        Assert.Null(FuzzTargets.Get("no-such-target"));
    }

    [Theory]
    [InlineData("safetensors", 1)]
    [InlineData("image", 2)]
    [InlineData("config", 3)]
    [InlineData("onnx", 4)]
    public async Task FixedSeedMutations_OnlyTypedErrors(string target, int seed)
    {
        var run = FuzzTargets.Get(target)!;
        var seeds = Directory.GetFiles(Path.Combine(FuzzFolder(), "corpus", target)).Order(StringComparer.Ordinal)
            .Select(File.ReadAllBytes).ToArray();
        var rng = new Random(seed);
        (int Seed, int Mutation, byte[] Input) current = (0, 0, []);
        // On a thread of its own, so that a hang fails the test with its input instead of stalling CI.
        var loop = Task.Factory.StartNew(() =>
        {
            for (int s = 0; s < seeds.Length; s++)
                for (int m = 0; m < MutationsPerSeed; m++)
                {
                    var input = Mutate(seeds[s], seeds[rng.Next(seeds.Length)], rng);
                    Volatile.Write(ref current.Input, input);
                    (current.Seed, current.Mutation) = (s, m);
                    try { run(input); }
                    catch (Exception e) { throw Failure($"threw {e.GetType().Name}: {e.Message}", s, m, input, e); }
                }
            FuzzTargets.DeleteScratch();
        }, TaskCreationOptions.LongRunning);
        try { await loop.WaitAsync(TimeSpan.FromSeconds(HangSeconds)); }
        catch (TimeoutException)
        {
            throw Failure($"ran past {HangSeconds} s (a hang?)", current.Seed, current.Mutation, Volatile.Read(ref current.Input), null);
        }

        Exception Failure(string what, int s, int m, byte[] input, Exception? e)
        {
            string saved = Path.Combine(Path.GetTempPath(), $"fuzz-{target}-seed{seed}-{s}-{m}.bin");
            File.WriteAllBytes(saved, input);
            return new Xunit.Sdk.XunitException($"{target}: mutation {m} of seed file {s} (System.Random({seed})) {what}; " +
                $"input saved to {saved} (copy it to fuzz/regressions/{target}/ once fixed)\n{e}");
        }
    }

    /// <summary>The whole mutation run of one target takes a few seconds; this much means an input hangs.</summary>
    private const int HangSeconds = 120;

    /// <summary>One to four AFL-like havoc steps: bit flips, interesting values, byte runs cut or repeated, splices.</summary>
    private static byte[] Mutate(byte[] seed, byte[] other, Random rng)
    {
        var b = new List<byte>(seed);
        int steps = 1 + rng.Next(4);
        for (int i = 0; i < steps; i++)
        {
            int at = b.Count == 0 ? 0 : rng.Next(b.Count);
            switch (rng.Next(8))
            {
                case 0 when b.Count > 0: b[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1 when b.Count > 0: b[at] = Interesting[rng.Next(Interesting.Length)]; break;
                case 2 when b.Count > 0: b[at] = (byte)rng.Next(256); break;
                case 3 when b.Count > 0: b.RemoveRange(at, Math.Min(b.Count - at, 1 + rng.Next(16))); break;
                case 4: b.InsertRange(at, Enumerable.Repeat((byte)rng.Next(256), 1 + rng.Next(16))); break;
                case 5 when b.Count >= 4:
                    // a little-endian 32-bit interesting value (lengths, sizes, offsets)
                    int v = InterestingInts[rng.Next(InterestingInts.Length)];
                    at = Math.Min(at, b.Count - 4);
                    for (int k = 0; k < 4; k++) b[at + k] = (byte)(v >> (8 * k));
                    break;
                case 6 when other.Length > 0:
                    int from = rng.Next(other.Length), len = Math.Min(other.Length - from, 1 + rng.Next(32));
                    b.InsertRange(at, other.AsSpan(from, len).ToArray());
                    break;
                case 7 when b.Count > 1: b.RemoveRange(at, b.Count - at); break; // truncate
            }
        }
        return [.. b];
    }

    private static readonly byte[] Interesting = [0, 1, 0x7F, 0x80, 0xFF, (byte)'"', (byte)'{', (byte)'}', (byte)'[', (byte)']', (byte)',', (byte)'-', (byte)'9', (byte)'e'];
    private static readonly int[] InterestingInts = [0, 1, -1, 16, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x10000, int.MaxValue, int.MinValue, 100_000_001];

    /// <summary>The repository's fuzz/ folder, found upward from the test binaries.</summary>
    private static string FuzzFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "fuzz", "corpus");
            if (Directory.Exists(candidate)) return Path.Combine(dir.FullName, "fuzz");
        }
        throw new DirectoryNotFoundException($"no fuzz/corpus above {AppContext.BaseDirectory}");
    }
}
