namespace GpuAnomaly.Engine;

/// <summary>
/// An operation a graph node applies: it infers its output shape from its input shapes
/// (at build time) and runs on a device into a preallocated output (at run time).
/// Subclass it to add ops; the built-in ones are in Ops.cs.
/// </summary>
public abstract class Op
{
    /// <summary>Short lower-case kind ("conv2d", "relu"); default node names are built from it.</summary>
    public abstract string Kind { get; }

    /// <summary>
    /// The output shape for these input shapes. Throw <see cref="ArgumentException"/> with a
    /// message naming the shapes when they do not fit; the builder adds the node's name.
    /// </summary>
    public abstract Shape InferShape(IReadOnlyList<Shape> inputs);

    /// <summary>Computes <paramref name="output"/> from <paramref name="inputs"/>; may queue work on the device without waiting.</summary>
    public abstract void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output);

    /// <summary>
    /// True when the op may write its output over input 0: same size, and output element j
    /// depends on element j of input 0 only (other inputs may be read anywhere). The planner
    /// then reuses input 0's buffer when that input dies at this node and is not also another
    /// input of it. The device's kernels must then accept y aliasing x exactly.
    /// </summary>
    public virtual bool CanRunInPlace => false;

    /// <summary>
    /// Floating-point operations of one run on these shapes (a multiply-add counts 2), for profiles; 0 for ops whose
    /// cost is memory traffic (a profile then reports their bytes per second).
    /// </summary>
    public virtual double Flops(IReadOnlyList<Shape> inputs, Shape output) => 0;

    /// <summary>The op and its attributes, for graph listings.</summary>
    public override string ToString() => Kind;

    /// <summary>Throws the ArgumentException <see cref="InferShape"/> is expected to throw when the input count is wrong.</summary>
    protected void ExpectInputs(IReadOnlyList<Shape> inputs, int min, int max)
    {
        if (inputs.Count < min || inputs.Count > max)
            throw new ArgumentException($"{Kind} takes {(min == max ? $"{min}" : $"{min} to {max}")} inputs, got {inputs.Count}");
    }
}
