using GpuAnomaly.Engine;
using GpuAnomaly.Models;
using GpuAnomaly.Models.StudentTeacher;
using Xunit;

namespace GpuAnomaly.Tests.GraphEngine;

/// <summary>
/// Concurrent schedules: every node once, in a topological order; the arena never lets two values share bytes while
/// they may be live at once (overlapping positions, or touched by two lanes of one stage); runs give the sequential
/// plan's results.
/// </summary>
public class ExecutionScheduleTests
{
    [Fact]
    public void RandomDags_ConcurrentPlans_NoTwoPossiblyLiveValuesOverlap()
    {
        var rng = KernelLab.NewRng(out int seed);
        int concurrentStages = 0;
        for (int t = 0; t < 80; t++)
        {
            var dag = RandomDag.Create(rng, rng.Next(2, 60));
            int lanes = rng.Next(2, 5);
            // Infinite imbalance: every level of several chains becomes a concurrent stage, the hardest case for the planner.
            var schedule = ExecutionSchedule.Concurrent(dag.Graph, lanes, maxImbalance: rng.Next(2) == 0 ? double.PositiveInfinity : ExecutionSchedule.MaxImbalance);
            var plan = new ExecutionPlan(dag.Graph, schedule);
            CheckSchedule(plan, $"seed {seed}, dag {t}");
            CheckNoOverlap(plan, $"seed {seed}, dag {t}");
            Assert.True(plan.PeakActivationBytes <= plan.NaiveActivationBytes, $"seed {seed}, dag {t}");
            concurrentStages += schedule.Stages.Count(s => s.IsConcurrent);
        }
        Assert.True(concurrentStages > 20, $"seed {seed}: only {concurrentStages} concurrent stages in 80 DAGs");
    }

    [Fact]
    public void RandomDags_ConcurrentRuns_MatchHostEvaluation()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var device = new CpuDevice();
        for (int t = 0; t < 25; t++)
        {
            var dag = RandomDag.Create(rng, rng.Next(2, 40));
            var plan = new ExecutionPlan(dag.Graph, ExecutionSchedule.Concurrent(dag.Graph, rng.Next(2, 5), double.PositiveInfinity));
            using var exec = new Executor(plan, device);
            var expected = dag.Evaluate(dag.Inputs);
            for (int run = 0; run < 3; run++)
            {
                var got = exec.RunToHost(dag.Inputs);
                foreach (var (name, want) in expected)
                    Assert.True(want.AsSpan().SequenceEqual(got[name]), $"seed {seed}, dag {t}, run {run}: output {name} differs\n{plan}");
            }
        }
    }

    [Fact]
    public void OneLane_IsTheSequentialPlan()
    {
        var dag = RandomDag.Create(KernelLab.NewRng(out _), 30);
        Assert.Same(dag.Graph.Plan, dag.Graph.PlanFor(1));
        var schedule = ExecutionSchedule.Concurrent(dag.Graph, 1);
        Assert.False(schedule.IsConcurrent);
        Assert.Equal(dag.Graph.Nodes, schedule.Order);
    }

    /// <summary>A big branch beside a small one (a ResNet block's shortcut) stays sequential: its ops keep their threads.</summary>
    [Fact]
    public void UnbalancedFork_StaysSequential_BalancedForkRunsConcurrently()
    {
        var rng = KernelLab.NewRng(out int seed);
        foreach (bool balanced in new[] { false, true })
        {
            var b = new GraphBuilder();
            var x = b.Input("x", new Shape(4096));
            Value Branch(int length, int elements)
            {
                var v = x;
                for (int i = 0; i < length; i++) v = b.Apply(new MixOp(rng, 1, new Shape(elements)), v);
                return v;
            }
            var big = Branch(6, 4096);
            var small = balanced ? Branch(6, 4096) : Branch(1, 64);
            b.Output("y", b.Apply(new MixOp(rng, 2, new Shape(100)), big, small));
            var graph = b.Build();
            var schedule = ExecutionSchedule.Concurrent(graph, 2);
            Assert.True(balanced == schedule.IsConcurrent, $"seed {seed}, balanced {balanced}: {schedule}");
            if (balanced) Assert.Equal([6, 6], schedule.Stages.Single(s => s.IsConcurrent).Lanes.Select(l => l.Count));
        }
    }

    /// <summary>
    /// The Uninformed Students graph: twelve independent chains (teacher and 3 students at 3 scales) dealt evenly over
    /// two lanes, then the three score nodes; outputs equal the sequential plan's (the ops compute each output the same
    /// way on one thread as on several).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void StudentTeacherModel_ConcurrentLanes_MatchSequential(int batch)
    {
        var rng = KernelLab.NewRng(out int seed);
        string path = BundledModels.Resolve(BundledModels.UninformedStudentsDefault);
        var images = KernelLab.RandomFloats(rng, batch * 28 * 28);
        for (int i = 0; i < images.Length; i++) images[i] = (images[i] + 1f) / 2f;
        using var sequentialDevice = new CpuDevice();
        sequentialDevice.SetLanes(1);
        using var concurrentDevice = new CpuDevice();
        concurrentDevice.SetLanes(2);
        using var sequential = StudentTeacherModel.Load(path, sequentialDevice, batch);
        using var concurrent = StudentTeacherModel.Load(path, concurrentDevice, batch);
        Assert.False(sequential.Plan.Schedule.IsConcurrent);
        var stage = Assert.Single(concurrent.Plan.Schedule.Stages, s => s.IsConcurrent);
        Assert.Equal(2, stage.Lanes.Count);
        // Every convolution and pool runs in the concurrent stage; the three score nodes, which read four chains each, after it.
        Assert.Equal(concurrent.Plan.Order.Count - 3, stage.Lanes.Sum(l => l.Count));
        Assert.Equal(stage.Lanes[0].Count, stage.Lanes[1].Count);
        CheckSchedule(concurrent.Plan, $"seed {seed}");
        CheckNoOverlap(concurrent.Plan, $"seed {seed}");
        var want = sequential.Run(images);
        for (int run = 0; run < 3; run++)
        {
            var got = concurrent.Run(images);
            foreach (int p in want.ScaleMaps.Keys)
                KernelLab.AssertClose(got.ScaleMaps[p], want.ScaleMaps[p].Select(v => (double)v).ToArray(), 1e-6, $"seed {seed}, run {run}, p = {p}");
            KernelLab.AssertClose(got.ImageScores, want.ImageScores.Select(v => (double)v).ToArray(), 1e-6, $"seed {seed}, run {run}, image scores");
        }
    }

    /// <summary>Every node exactly once, each after the producers of its inputs; lanes of one stage share no node.</summary>
    internal static void CheckSchedule(ExecutionPlan plan, string context)
    {
        var order = plan.Order;
        Assert.Equal(plan.Graph.Nodes.Count, order.Count);
        Assert.Equal(plan.Graph.Nodes.OrderBy(n => n.Index), order.OrderBy(n => n.Index));
        var position = new Dictionary<Node, int>();
        for (int i = 0; i < order.Count; i++) position[order[i]] = i;
        foreach (var n in order)
            foreach (var v in n.Inputs)
                if (v.Producer is { } p) Assert.True(position[p] < position[n], $"{context}: {n.Name} runs before {p.Name}");
        foreach (var stage in plan.Schedule.Stages.Where(s => s.IsConcurrent))
            for (int a = 0; a < stage.Lanes.Count; a++)
                for (int b = 0; b < stage.Lanes.Count; b++)
                    if (a != b)
                        foreach (var n in stage.Lanes[b])
                            Assert.DoesNotContain(n.Inputs, v => v.Producer is { } p && stage.Lanes[a].Contains(p));
    }

    /// <summary>
    /// Arena values that may be live at once (positions overlap, or two lanes of one stage touch them) occupy disjoint
    /// bytes, except an in-place output and its input when nothing else in another lane reads that input.
    /// </summary>
    internal static void CheckNoOverlap(ExecutionPlan plan, string context)
    {
        var position = new Dictionary<Node, int>();
        for (int i = 0; i < plan.Order.Count; i++) position[plan.Order[i]] = i;
        var laneOf = new Dictionary<Node, (int Stage, int Lane)>();
        for (int s = 0; s < plan.Schedule.Stages.Count; s++)
            if (plan.Schedule.Stages[s].IsConcurrent)
                for (int l = 0; l < plan.Schedule.Stages[s].Lanes.Count; l++)
                    foreach (var n in plan.Schedule.Stages[s].Lanes[l]) laneOf[n] = (s, l);
        var arena = plan.Graph.Values.Where(v => plan[v].Storage == Storage.Arena).ToList();
        HashSet<(int, int)> Touching(Value v) =>
            plan.Graph.Nodes.Where(n => n == v.Producer || n.Inputs.Contains(v)).Where(laneOf.ContainsKey).Select(n => laneOf[n]).ToHashSet();
        var touching = arena.ToDictionary(v => v, Touching);
        foreach (var v in arena)
        {
            var p = plan[v];
            Assert.True(p.Offset % ExecutionPlan.Alignment == 0 && p.Offset >= 0 && p.Offset + p.Bytes <= plan.PeakActivationBytes, $"{context}: {v.Name} {p}");
            Assert.Equal(position[v.Producer!], p.FirstUse);
            int lastReader = plan.Graph.Nodes.Where(n => n.Inputs.Contains(v)).Select(n => position[n]).DefaultIfEmpty(p.FirstUse).Max();
            Assert.Equal(lastReader, p.LastUse);
        }
        foreach (var a in arena)
        foreach (var b in arena)
        {
            if (a.Id >= b.Id) continue;
            var (pa, pb) = (plan[a], plan[b]);
            bool shareBytes = pa.Offset < pb.Offset + pb.Bytes && pb.Offset < pa.Offset + pa.Bytes;
            if (!shareBytes) continue;
            bool overlapping = pa.FirstUse <= pb.LastUse && pb.FirstUse <= pa.LastUse;
            bool concurrent = touching[a].Any(x => touching[b].Any(y => x.Item1 == y.Item1 && x.Item2 != y.Item2));
            if (!overlapping && !concurrent) continue;
            var (first, second) = pa.FirstUse <= pb.FirstUse ? (a, b) : (b, a);
            bool inPlace = plan[second].InPlaceOf == first && plan[second].Offset == plan[first].Offset && plan[first].LastUse == plan[second].FirstUse
                && second.Producer!.Inputs[0] == first && second.Producer.Inputs.Count(i => i == first) == 1
                && !(laneOf.TryGetValue(second.Producer, out var own) && touching[first].Any(x => x.Item1 == own.Stage && x.Item2 != own.Lane));
            Assert.True(inPlace, $"{context}: {a.Name} ({pa}) and {b.Name} ({pb}) share bytes and may be live at once\n{plan}");
        }
    }
}
