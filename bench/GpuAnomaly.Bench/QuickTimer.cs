using System.Diagnostics;

namespace GpuAnomaly.Bench;

/// <summary>
/// The quick modes' timing rule: warm up for a while (so that tiered compilation has settled), then time
/// <c>reps</c> single runs and report the median and the minimum in milliseconds.
/// </summary>
internal static class QuickTimer
{
    public static (double Median, double Min) Measure(int reps, Action run, int warmupMs = 500)
    {
        long w0 = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(w0).TotalMilliseconds < warmupMs) run();
        var times = new double[Math.Max(1, reps)];
        for (int i = 0; i < times.Length; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(times);
        return (times[times.Length / 2], times[0]);
    }
}
