using GpuAnomaly.Engine;
using GpuAnomaly.Models.Anomaly;
using Xunit;

namespace GpuAnomaly.Tests.Engine;

/// <summary>
/// A model instance is not thread-safe (its buffers are reused between runs): a second concurrent caller must get a
/// ConcurrentUseException, never numbers mixed from two inputs; one instance per thread must give exactly the
/// sequential answers.
/// </summary>
public class ConcurrentUseTests
{
    private static readonly string[] Models =
    [
        Path.Combine(AppContext.BaseDirectory, "models", "memory_bank_default.safetensors"),
        Path.Combine(AppContext.BaseDirectory, "Fixtures", "uninformed_students_small.safetensors"),
    ];

    public static TheoryData<int> ModelIndices => [0, 1];

    /// <summary>y = 2x, after signalling that the run is inside the graph and waiting to be let go: a deterministic overlap.</summary>
    private sealed class GateOp : Op
    {
        public readonly ManualResetEventSlim Entered = new(), Release = new();
        public bool Throw;
        public override string Kind => "gate";
        public override Shape InferShape(IReadOnlyList<Shape> inputs) => inputs[0];
        public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
        {
            Entered.Set();
            if (!Release.Wait(TimeSpan.FromSeconds(30))) throw new TimeoutException("the test never released the gate");
            if (Throw) throw new InvalidOperationException("op failure");
            var x = inputs[0].Span<float>();
            var y = output.Span<float>();
            for (int i = 0; i < y.Length; i++) y[i] = 2 * x[i];
        }
    }

    [Fact]
    public void Executor_SecondThreadDuringARun_IsRejected_AndTheRunIsUnharmed()
    {
        using var device = new CpuDevice();
        var g = new GraphBuilder();
        var gate = new GateOp();
        g.Output("y", g.Apply("gate", gate, g.Input("x", new Shape(4))));
        using var exec = new Executor(g.Build(), device);
        float[] mine = [1, 2, 3, 4], theirs = [9, 9, 9, 9];

        float[]? firstResult = null;
        var first = new Thread(() => firstResult = exec.RunToHost(("x", mine))["y"]);
        first.Start();
        Assert.True(gate.Entered.Wait(TimeSpan.FromSeconds(30)));
        var e = Assert.Throws<ConcurrentUseException>(() => exec.RunToHost(("x", theirs)));
        Assert.Contains("not thread-safe", e.Message);
        Assert.Contains("one instance per thread", e.Message);
        Assert.Contains("docs/ROBUSTNESS.md", e.Message);
        Assert.Throws<ConcurrentUseException>(() => exec.SetInput("x", theirs));
        Assert.Throws<ConcurrentUseException>(() => exec.Run());
        gate.Release.Set();
        Assert.True(first.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal([2f, 4, 6, 8], firstResult!);

        // Released after a run, and after a run that failed.
        Assert.Equal([18f, 18, 18, 18], exec.RunToHost(("x", theirs))["y"]);
        gate.Throw = true;
        Assert.Throws<InvalidOperationException>(() => exec.RunToHost(("x", mine)));
        gate.Throw = false;
        Assert.Equal([2f, 4, 6, 8], exec.RunToHost(("x", mine))["y"]);
    }

    [Fact]
    public void ExclusiveRun_NestedEntryOnTheRunningThread_IsAllowed_AndReleasedOnce()
    {
        var run = new ExclusiveRun("m");
        using (run.Enter())
        {
            using (run.Enter()) { }
            // Still held by the outer entry after the nested one ends.
            Assert.IsType<ConcurrentUseException>(OnAnotherThread(() => run.Enter().Dispose()));
        }
        Assert.Null(OnAnotherThread(() => run.Enter().Dispose()));
    }

    /// <summary>
    /// Threads released together by a barrier call Score on one model, round after round: every call either returns
    /// exactly its input's sequential answer or throws ConcurrentUseException, and rejections do happen.
    /// </summary>
    [Theory]
    [MemberData(nameof(ModelIndices))]
    public void ThreadsHammeringOneModel_GetTheirOwnAnswersOrARejection(int modelIndex)
    {
        const int threads = 4;
        using var device = new CpuDevice();
        using var model = AnomalyModel.Load(Models[modelIndex], device, 1);
        var inputs = Inputs(model.InputShape, threads, 1);
        var expected = inputs.Select(model.Score).ToArray();
        int rejected = 0, succeeded = 0, rounds = 0;
        var wrong = new System.Collections.Concurrent.ConcurrentBag<string>();
        var started = DateTime.UtcNow;
        // Until a rejection is seen (the runs take milliseconds, so they overlap within a few rounds), 20 rounds at least.
        while ((rejected == 0 || rounds < 20) && DateTime.UtcNow - started < TimeSpan.FromSeconds(60))
        {
            using var barrier = new Barrier(threads);
            OnThreads(threads, t =>
            {
                barrier.SignalAndWait();
                try
                {
                    var r = model.Score(inputs[t]);
                    if (!r.Map.AsSpan().SequenceEqual(expected[t].Map) || !r.ImageScores.AsSpan().SequenceEqual(expected[t].ImageScores))
                        wrong.Add($"round {rounds}, thread {t}: score {r.ImageScores[0]} vs {expected[t].ImageScores[0]}");
                    Interlocked.Increment(ref succeeded);
                }
                catch (ConcurrentUseException) { Interlocked.Increment(ref rejected); }
            });
            rounds++;
        }
        Assert.Empty(wrong);
        Assert.True(rejected > 0, $"no overlap seen in {rounds} rounds");
        Assert.True(succeeded >= rounds, $"{succeeded} successes in {rounds} rounds");
        // The model still works after the rejections.
        Assert.Equal(expected[0].ImageScores, model.Score(inputs[0]).ImageScores);
    }

    /// <summary>One model per thread (one shared cpu device): bit-identical to the same inputs run sequentially on one model.</summary>
    [Theory]
    [MemberData(nameof(ModelIndices))]
    public void OneModelPerThread_IsBitIdenticalToSequentialRuns(int modelIndex)
    {
        const int threads = 4, perThread = 5;
        using var device = new CpuDevice();
        IAnomalyModel Load() => AnomalyModel.Load(Models[modelIndex], device, 1);
        float[][] inputs;
        AnomalyMaps[] sequential;
        using (var model = Load())
        {
            inputs = Inputs(model.InputShape, threads * perThread, 2);
            sequential = inputs.Select(model.Score).ToArray();
        }
        var parallel = new AnomalyMaps[inputs.Length];
        using var barrier = new Barrier(threads);
        // Dedicated threads: a barrier inside Parallel.For could wait for a worker the pool never starts.
        OnThreads(threads, t =>
        {
            using var mine = Load();
            barrier.SignalAndWait();
            for (int i = t * perThread; i < (t + 1) * perThread; i++) parallel[i] = mine.Score(inputs[i]);
        });
        for (int i = 0; i < inputs.Length; i++)
        {
            Assert.True(sequential[i].Map.AsSpan().SequenceEqual(parallel[i].Map), $"input {i}: map differs");
            Assert.True(sequential[i].ImageScores.AsSpan().SequenceEqual(parallel[i].ImageScores), $"input {i}: score {parallel[i].ImageScores[0]} vs {sequential[i].ImageScores[0]}");
        }
    }

    /// <summary>The pattern docs/ROBUSTNESS.md shows, as written there: one model per Parallel.For partition (localInit).</summary>
    [Fact]
    public void DocumentedPattern_OneModelPerPartition_MatchesSequentialScores()
    {
        string path = Models[0];
        using var device = Device.Open("cpu");
        float[][] images;
        float[] expected;
        using (var one = AnomalyModel.Load(path, device, batch: 1))
        {
            images = Inputs(one.InputShape, 16, 3);
            expected = images.Select(x => one.Score(x).ImageScores[0]).ToArray();
        }

        var scores = new float[images.Length];
        Parallel.For(0, images.Length,
            localInit: () => AnomalyModel.Load(path, device, batch: 1),   // one model per worker
            body: (i, _, model) => { scores[i] = model.Score(images[i]).ImageScores[0]; return model; },
            localFinally: model => model.Dispose());

        Assert.Equal(expected, scores);
    }

    /// <summary>Runs body(0..n-1) on n new threads and joins them; rethrows the first failure.</summary>
    private static void OnThreads(int n, Action<int> body)
    {
        var errors = new Exception?[n];
        var threads = Enumerable.Range(0, n).Select(t => new Thread(() =>
        {
            try { body(t); }
            catch (Exception e) { errors[t] = e; }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        if (errors.FirstOrDefault(e => e is not null) is { } first) throw new AggregateException(first);
    }

    private static Exception? OnAnotherThread(Action body)
    {
        Exception? error = null;
        var t = new Thread(() =>
        {
            try { body(); }
            catch (Exception e) { error = e; }
        });
        t.Start();
        t.Join();
        return error;
    }

    /// <summary>Distinct images in [0, 1] (each input's answer differs, so a mixed-up result is visible).</summary>
    private static float[][] Inputs(Shape shape, int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, (int)shape.Elements).Select(_ => rng.NextSingle()).ToArray()).ToArray();
    }
}
