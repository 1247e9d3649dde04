using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace GpuAnomaly.Kernels.Cpu;

/// <summary>
/// Parallel loops of the `cpu` device's kernels, on workers that stay awake between loops. A model at batch 1 runs
/// dozens of ops of 10-50 us each; Parallel.For wakes a pool thread for each, and waking a sleeping (virtual) CPU
/// costs as much as the op: window_vit at batch 1 took 0.76 ms on 2 threads against 0.83 ms on 1. Here the
/// <see cref="Environment.ProcessorCount"/> - 1 workers spin for <see cref="SpinMicroseconds"/> after each loop
/// (as ONNX Runtime's intra-op threads do) and only then block, so the next op of the same run finds them awake.
/// One loop runs at a time: a loop started while another runs (a second model on another thread: the workers are
/// taken, the caller's own core is not) or from inside a loop body runs inline on its calling thread. Exceptions of
/// the body reach the caller (the first one).
/// </summary>
public static class CpuParallel
{
    /// <summary>How long an idle worker keeps spinning for the next loop before it blocks.</summary>
    public const int SpinMicroseconds = 200;

    private static readonly object s_start = new();
    private static Thread[]? s_workers;
    private static readonly SemaphoreSlim s_wake = new(0);
    private static int s_sleepers;

    // The current loop. Written by its caller while s_closed is 1 and no worker is inside (s_joined == 0).
    private static Action<int>? s_body;
    private static ILoopBody? s_loopBody;
    private static int s_from, s_count, s_next, s_done;
    private static Exception? s_error;
    private static volatile int s_closed = 1;
    private static int s_joined;
    private static long s_generation;
    private static int s_busy;

    [ThreadStatic] private static bool t_inside;

    /// <summary>
    /// The threads a loop started on this thread would run on: 1 inside a loop body (a lane of a concurrent stage
    /// included), whose loops run inline, else <see cref="Environment.ProcessorCount"/>. Kernels size their splits by
    /// it: a convolution cut into tasks for two threads that then all run on one re-streams its weights per task.
    /// </summary>
    public static int Threads => t_inside ? 1 : Environment.ProcessorCount;

    /// <summary>body(i) for every i in [from, to), spread over the cores; returns when all are done.</summary>
    public static void For(int from, int to, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (TakeWorkers(to - from)) Run(from, to, body, null);
        else for (int i = from; i < to; i++) body(i);
    }

    /// <summary>
    /// body.Run(i) for every i in [from, to): for callers that keep one body object and so allocate nothing per
    /// loop (a lambda's closure and delegate are new on every call).
    /// </summary>
    public static void For(int from, int to, ILoopBody body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (TakeWorkers(to - from)) Run(from, to, null, body);
        else for (int i = from; i < to; i++) body.Run(i);
    }

    /// <summary>
    /// Whether a loop of <paramref name="count"/> indices goes to the workers (and takes them: s_busy); false when it
    /// runs inline: one index, a call from inside a loop body, one core, or the workers busy with another caller's loop.
    /// </summary>
    private static bool TakeWorkers(int count) =>
        count > 1 && !t_inside && Environment.ProcessorCount > 1 && Interlocked.CompareExchange(ref s_busy, 1, 0) == 0;

    /// <summary>Runs the loop on the workers; the caller holds s_busy.</summary>
    private static void Run(int from, int to, Action<int>? action, ILoopBody? loopBody)
    {
        int count = to - from;
        try
        {
            EnsureWorkers();
            s_body = action;
            s_loopBody = loopBody;
            s_from = from;
            s_count = count;
            s_next = 0;
            s_done = 0;
            s_error = null;
            s_closed = 0; // publishes the fields above
            Interlocked.Increment(ref s_generation);
            int sleepers = Volatile.Read(ref s_sleepers);
            if (sleepers > 0) s_wake.Release(sleepers);

            t_inside = true;
            try { Work(); }
            finally { t_inside = false; }
            var spin = new SpinWait();
            while (Volatile.Read(ref s_done) < count) spin.SpinOnce(-1);
            s_closed = 1;
            while (Volatile.Read(ref s_joined) != 0) Thread.SpinWait(4);
            var error = s_error;
            s_body = null;
            s_loopBody = null;
            if (error is not null) ExceptionDispatchInfo.Capture(error).Throw();
        }
        finally
        {
            Volatile.Write(ref s_busy, 0);
        }
    }

    /// <summary>Takes indices of the current loop until none are left.</summary>
    private static void Work()
    {
        var body = s_body;
        var loopBody = s_loopBody;
        int from = s_from, count = s_count;
        int i;
        while ((i = Interlocked.Increment(ref s_next) - 1) < count)
        {
            try
            {
                if (loopBody is not null) loopBody.Run(from + i);
                else body!(from + i);
            }
            catch (Exception e) { Interlocked.CompareExchange(ref s_error, e, null); }
            Interlocked.Increment(ref s_done);
        }
    }

    private static void EnsureWorkers()
    {
        if (Volatile.Read(ref s_workers) is not null) return;
        lock (s_start)
        {
            if (s_workers is not null) return;
            var workers = new Thread[Environment.ProcessorCount - 1];
            for (int w = 0; w < workers.Length; w++)
            {
                workers[w] = new Thread(WorkerLoop) { IsBackground = true, Name = $"gpuanomaly-cpu-{w + 1}" };
                workers[w].Start();
            }
            Volatile.Write(ref s_workers, workers);
        }
    }

    private static void WorkerLoop()
    {
        t_inside = true; // a kernel called from a loop body runs its own loops inline
        long seen = Volatile.Read(ref s_generation);
        long spinTicks = Stopwatch.Frequency * SpinMicroseconds / 1_000_000;
        while (true)
        {
            long idleSince = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref s_generation) == seen)
            {
                if (Stopwatch.GetTimestamp() - idleSince > spinTicks)
                {
                    Interlocked.Increment(ref s_sleepers);
                    if (Volatile.Read(ref s_generation) == seen) s_wake.Wait(10);
                    Interlocked.Decrement(ref s_sleepers);
                    idleSince = Stopwatch.GetTimestamp();
                }
                else Thread.SpinWait(8);
            }
            seen = Volatile.Read(ref s_generation);
            Interlocked.Increment(ref s_joined);
            if (s_closed == 0) Work();
            Interlocked.Decrement(ref s_joined);
        }
    }
}

/// <summary>The body of a <see cref="CpuParallel.For(int, int, ILoopBody)"/> loop: Run(i) for each index, from any thread.</summary>
public interface ILoopBody
{
    void Run(int index);
}
