using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;

namespace GpuAnomaly.Bench;

/// <summary>Conv2dCpu on the shapes that matter (ResNet-like layers, the Uninformed Students patch network).</summary>
[Config(typeof(Config))]
public class Conv2dBench
{
    /// <summary>The benchmarked shapes; tools/bench/conv_cpu_vs_torch.py times PyTorch on the same list.</summary>
    public static readonly (string Name, Conv2dParams P)[] Shapes =
    [
        ("1x64x56x56-64-k3p1", Conv2dParams.Create(1, 64, 56, 56, 64, 3, 3, padding: 1)),
        ("1x128x32x32-256-k5p2", Conv2dParams.Create(1, 128, 32, 32, 256, 5, 5, padding: 2)),
        ("8x3x64x64-128-k6", Conv2dParams.Create(8, 3, 64, 64, 128, 6, 6)),
        ("1x3x70x70-128-k6", Conv2dParams.Create(1, 3, 70, 70, 128, 6, 6, act: Activation.LeakyRelu, slope: 0.005f)),
        ("1x256x28x28-128-k1", Conv2dParams.Create(1, 256, 28, 28, 128, 1, 1)),
        ("1x128x56x56-dw-k3p1", Conv2dParams.Create(1, 128, 56, 56, 128, 3, 3, padding: 1, groups: 128)),
    ];

    public static Conv2dParams Lookup(string name) => Array.Find(Shapes, s => s.Name == name).P;

    public static IEnumerable<string> ShapeNames => Shapes.Select(s => s.Name);

    [ParamsSource(nameof(ShapeNames))]
    public string Shape { get; set; } = "";

    private Conv2dParams _p;
    private float[] _x = [], _w = [], _b = [], _y = [];

    [GlobalSetup]
    public void Setup()
    {
        _p = Lookup(Shape);
        var rng = new Random(1);
        _x = Random(rng, _p.InputElements);
        _w = Random(rng, _p.WeightElements);
        _b = Random(rng, _p.COut);
        _y = new float[_p.OutputElements];
    }

    [Benchmark]
    public void Forward() => Conv2dCpu.Forward(_p, _x, _w, _b, _y);

    internal static float[] Random(Random rng, long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new GflopsColumn());
    }

    /// <summary>Conv2dParams.Flops / median time.</summary>
    private sealed class GflopsColumn : IColumn
    {
        public string Id => "GFLOPs";
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Conv2dParams.Flops / median time";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats is null || benchmarkCase.Parameters["Shape"] is not string name) return "-";
            return (Lookup(name).Flops / stats.Median).ToString("F1");
        }
    }
}
