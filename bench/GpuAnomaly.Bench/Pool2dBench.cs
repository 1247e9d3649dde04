using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Pool;

namespace GpuAnomaly.Bench;

/// <summary>
/// MaxPool2d / AvgPool2d on the `cpu` device through Device.Pool2d. Pooling is memory-bound,
/// so the GB/s column (input read once + output written once, per mean time) is the number
/// to hold against the machine's memory bandwidth.
/// Run: dotnet run -c Release --project bench/GpuAnomaly.Bench -- --filter '*Pool2dBench*'
/// </summary>
[Config(typeof(Pool2dBenchConfig))]
public class Pool2dBench
{
    private CpuDevice _device = null!;
    private Tensor _x = null!, _y = null!;

    public static IEnumerable<PoolCase> Cases()
    {
        foreach (var (n, c, h) in new[] { (8, 128, 64), (1, 64, 112) })
        {
            // BenchmarkDotNet abbreviates parameter names above 15 characters: keep them short (square inputs).
            string shape = $"{n}x{c}x{h}";
            // 2x2 stride 1: the Uninformed Students dense patch extraction.
            yield return new($"max2s1 {shape}", Pool2dParams.Create(PoolKind.Max, n, c, h, h, kernel: 2, stride: 1));
            yield return new($"max2s2 {shape}", Pool2dParams.Create(PoolKind.Max, n, c, h, h, kernel: 2, stride: 2));
            yield return new($"avg3p1 {shape}", Pool2dParams.Create(PoolKind.Avg, n, c, h, h, kernel: 3, stride: 1, padding: 1));
        }
    }

    [ParamsSource(nameof(Cases))]
    public PoolCase Case { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        _device = new CpuDevice();
        var p = Case.Params;
        var rng = new Random(1);
        var x = new float[p.InputElements];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        _x = _device.FromHost(x, new Shape(p.N, p.C, p.H, p.W));
        _y = _device.Allocate(new Shape(p.N, p.C, p.OutH, p.OutW));
    }

    [Benchmark]
    public void Forward() => _device.Pool2d(Case.Params, _x, _y);

    [GlobalCleanup]
    public void Cleanup()
    {
        _x.Dispose();
        _y.Dispose();
        _device.Dispose();
    }
}

/// <summary>A named pooling shape; the name ("max2s1 8x128x64" = 2x2 stride 1 on [8, 128, 64, 64]) is what BenchmarkDotNet prints.</summary>
public sealed record PoolCase(string Name, Pool2dParams Params)
{
    /// <summary>Input read once plus output written once, in bytes.</summary>
    public long Bytes => 4 * (Params.InputElements + Params.OutputElements);
    public override string ToString() => Name;
}

public sealed class Pool2dBenchConfig : ManualConfig
{
    public Pool2dBenchConfig() => AddColumn(new GigabytesPerSecondColumn());
}

/// <summary>Bytes moved (<see cref="PoolCase.Bytes"/>) over the mean time: bytes per nanosecond is GB/s.</summary>
public sealed class GigabytesPerSecondColumn : IColumn
{
    public string Id => nameof(GigabytesPerSecondColumn);
    public string ColumnName => "GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "bytes read + written per second (input once, output once), 1e9";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || benchmarkCase.Parameters["Case"] is not PoolCase c) return "NA";
        return (c.Bytes / stats.Mean).ToString("0.0");
    }
}
