using System.Numerics;

namespace GpuAnomaly.Engine;

/// <summary>An op asked to run on a device it has no kernel for; names the op and the device.</summary>
public sealed class OpNotOnDeviceException(string op, string device)
    : GpuAnomalyException($"op {op} has no kernel on device {device} yet (it runs on cpu; use --device cpu)")
{
    public string Op { get; } = op;
    public string Device { get; } = device;
}

/// <summary>
/// Base of the generic ops the ONNX importer adds (src/Engine/Graph/Onnx): one generic <see cref="Compute{T}"/>
/// serves the cpu device (float, over the tensors' host memory) and <see cref="Reference"/> (float64 on host arrays),
/// which is both the import-time constant folder and the tests' reference. Devices without a kernel for the op get
/// <see cref="OpNotOnDeviceException"/>.
/// </summary>
public abstract class HostKernelOp : Op
{
    protected abstract void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) where T : unmanaged, IFloatingPointIeee754<T>;

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        if (device is IlgpuDevice gpu && RunIlgpu(gpu, inputs, output)) return;
        if (device is not CpuDevice) throw new OpNotOnDeviceException(ToString(), device.Name);
        var dims = new int[inputs.Count][];
        for (int i = 0; i < dims.Length; i++) dims[i] = inputs[i].Shape.Dims.ToArray();
        Compute<float>(i => inputs[i].Span<float>(), dims, output.Span<float>(), output.Shape.Dims.ToArray());
    }

    /// <summary>Runs on an ILGPU device when the op has a kernel for these arguments; false when it has none.</summary>
    protected virtual bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output) => false;

    /// <summary>The op in float64 on host arrays; the output shape is inferred (ArgumentException when the shapes do not fit).</summary>
    public double[] Reference(IReadOnlyList<double[]> inputs, IReadOnlyList<Shape> shapes, out Shape shape)
    {
        shape = InferShape(shapes);
        var y = new double[shape.Elements];
        Compute<double>(i => inputs[i], shapes.Select(s => s.Dims.ToArray()).ToArray(), y, shape.Dims.ToArray());
        return y;
    }

    protected static Shape ShapeOf(IReadOnlyList<int> dims) => new([.. dims]);
}
