using System.Runtime.CompilerServices;
using GpuAnomaly.Kernels.Knn;

namespace GpuAnomaly.Engine;

/// <summary>
/// Exact nearest-neighbour distances to a memory bank on the kNN kernels (<see cref="KnnParams"/>, squared L2): inputs
/// queries [Q, D], bank [N, D], the bank's squared row norms [N]; output the k smallest distances [Q, k], ascending,
/// clamped at 0. What the importer maps PatchCore's ||x||^2 - 2 x.M^T + ||M||^2 -> ReduceMin onto: the Q x N distance
/// matrix is never written to memory.
/// </summary>
public sealed class KnnOp(int k = 1) : Op
{
    public int K { get; } = k;
    public override string Kind => "knn";

    // The kernels also write each distance's bank row (int32). The graph has one float output per node, so the indices
    // live in a buffer of the op's own per device, allocated at the first run and reused by every later one.
    private readonly ConditionalWeakTable<Device, Tensor> _indices = new();

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 3, 3);
        var p = Params(inputs);
        return new Shape(p.Q, p.K);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var p = Params(inputs.Select(t => t.Shape).ToList());
        Tensor indices;
        lock (_indices)
            if (!_indices.TryGetValue(device, out indices!) || indices.Shape.Elements != p.OutputElements)
            {
                indices?.Dispose();
                indices = device.Allocate(new Shape(p.Q, p.K), DType.I32, "knn indices");
                _indices.AddOrUpdate(device, indices);
            }
        device.Knn(p, inputs[0], inputs[1], inputs[2], output, indices);
    }

    public KnnParams Params(IReadOnlyList<Shape> s)
    {
        Shape q = s[0], bank = s[1], norms = s[2];
        if (q.Rank != 2 || bank.Rank != 2 || bank[1] != q[1] || norms.Rank != 1 || norms[0] != bank[0])
            throw new ArgumentException($"knn: queries {q}, bank {bank}, norms {norms} do not fit ([Q, D], [N, D], [N])");
        var p = KnnParams.Create(q[0], bank[0], q[1], K);
        p.Validate();
        return p;
    }

    public override double Flops(IReadOnlyList<Shape> inputs, Shape output) => Params(inputs).Flops;

    public override string ToString() => $"knn(k={K})";
}
