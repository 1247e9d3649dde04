using BenchmarkDotNet.Attributes;
using GpuAnomaly.Kernels.Transformer;

namespace GpuAnomaly.Bench;

/// <summary>
/// nn.Linear on the `cpu` kernels with weights packed once (as the engine keeps constant weights): the SGEMM path
/// (M = 196 tokens of one 14x14 map) and the small-M path (M = 1, a head on one image).
/// Run: dotnet run -c Release --project bench/GpuAnomaly.Bench -- --filter '*LinearBench*'
/// </summary>
public class LinearBench
{
    private float[] _x = [], _bias = [], _y = [];
    private LinearPackedWeights _w = null!;
    private LinearParams _p;

    [Params(196, 1)] public int M { get; set; }
    [Params(64, 256)] public int K { get; set; }
    [Params(192, 256)] public int N { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _p = LinearParams.Create(M, K, N);
        var rng = new Random(1);
        float[] Random(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        _x = Random(_p.InputElements);
        _bias = Random(N);
        _y = new float[_p.OutputElements];
        _w = LinearCpu.PackWeights(_p, Random(_p.WeightElements));
    }

    [Benchmark]
    public void Forward() => LinearCpu.Forward(_p, _x, _w, _bias, _y);

    [GlobalCleanup]
    public void Cleanup() => _w.Dispose();
}
