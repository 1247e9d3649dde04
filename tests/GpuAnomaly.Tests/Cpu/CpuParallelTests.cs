using GpuAnomaly.Kernels.Cpu;
using Xunit;

namespace GpuAnomaly.Tests.Cpu;

/// <summary>The spinning-worker loop of the cpu kernels: every index exactly once, errors reach the caller, nesting and concurrent callers.</summary>
public class CpuParallelTests
{
    [Fact]
    public void EveryIndexRunsExactlyOnce_ManyLoopsInARow()
    {
        var rng = new Random(7);
        for (int loop = 0; loop < 2000; loop++)
        {
            int from = rng.Next(-5, 5), count = rng.Next(0, 70);
            var hits = new int[count];
            CpuParallel.For(from, from + count, i => Interlocked.Increment(ref hits[i - from]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void EmptyAndReversedRangesRunNothing()
    {
        int calls = 0;
        CpuParallel.For(3, 3, _ => Interlocked.Increment(ref calls));
        CpuParallel.For(5, 2, _ => Interlocked.Increment(ref calls));
        Assert.Equal(0, calls);
    }

    [Fact]
    public void FirstExceptionReachesTheCaller_AndTheNextLoopStillRuns()
    {
        var e = Assert.Throws<InvalidOperationException>(() =>
            CpuParallel.For(0, 64, i => { if (i == 37) throw new InvalidOperationException("index 37"); }));
        Assert.Equal("index 37", e.Message);
        int sum = 0;
        CpuParallel.For(0, 100, i => Interlocked.Add(ref sum, i));
        Assert.Equal(4950, sum);
    }

    [Fact]
    public void NestedLoopsRunInline()
    {
        var hits = new int[16 * 16];
        CpuParallel.For(0, 16, i => CpuParallel.For(0, 16, j => Interlocked.Increment(ref hits[i * 16 + j])));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void ConcurrentCallersFromSeveralThreadsAllComplete()
    {
        var totals = new long[4];
        var threads = Enumerable.Range(0, totals.Length).Select(t => new Thread(() =>
        {
            for (int loop = 0; loop < 300; loop++)
                CpuParallel.For(0, 50, i => Interlocked.Add(ref totals[t], i + 1));
        })).ToArray();
        foreach (var th in threads) th.Start();
        foreach (var th in threads) Assert.True(th.Join(TimeSpan.FromSeconds(60)), "a caller did not finish");
        Assert.All(totals, s => Assert.Equal(300L * 50 * 51 / 2, s));
    }

    private sealed class CountingBody(int[] hits, int from) : ILoopBody
    {
        public void Run(int index) => Interlocked.Increment(ref hits[index - from]);
    }

    [Fact]
    public void BodyObjectOverload_RunsEveryIndexOnce_WithoutAllocating()
    {
        var hits = new int[97];
        var body = new CountingBody(hits, 3);
        CpuParallel.For(3, 100, body); // warm: the workers exist
        Array.Clear(hits);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int loop = 0; loop < 50; loop++) CpuParallel.For(3, 100, body);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.All(hits, h => Assert.Equal(50, h));
    }
}
