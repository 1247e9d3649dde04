using GpuAnomaly.Fuzz;
using SharpFuzz;

// GpuAnomaly.Fuzz TARGET               AFL++ persistent mode (run by fuzz/run.sh under afl-fuzz)
// GpuAnomaly.Fuzz TARGET FILE...       runs the target once per file, outside the fuzzer (to reproduce a crash)
if (args.Length < 1 || FuzzTargets.Get(args[0]) is not { } target)
{
    Console.Error.WriteLine($"usage: GpuAnomaly.Fuzz {string.Join("|", FuzzTargets.Names)} [FILE...]");
    return 2;
}

if (args.Length > 1)
{
    foreach (var file in args.Skip(1))
    {
        target(File.ReadAllBytes(file));
        Console.WriteLine($"{file}: ok");
    }
    return 0;
}

// GPUANOMALY_FUZZ_LAST_INPUT=FILE: each input is written there before it runs, so that an input that kills the
// process outright (a native crash or a fatal runtime error, which AFL++ reports only as a lost fork server) is kept.
string? last = Environment.GetEnvironmentVariable("GPUANOMALY_FUZZ_LAST_INPUT");
Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    var input = buffer.ToArray();
    if (last is not null) File.WriteAllBytes(last, input);
    target(input);
});
return 0;
