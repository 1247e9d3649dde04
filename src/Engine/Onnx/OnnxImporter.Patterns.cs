using C = GpuAnomaly.Engine.Onnx.OnnxImporter.Context;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>Subgraphs recognised as one engine op, matched at their first node.</summary>
public static partial class OnnxImporter
{
    /// <summary>
    /// The erf GELU as exporters write it, x * 0.5 * (1 + erf(x / sqrt 2)) in its usual orders: Div(x, sqrt 2) (or
    /// Mul(x, 1/sqrt 2)) -> Erf -> Add 1 -> Mul by x -> Mul 0.5 (or x * 0.5 first). Emitted as <see cref="GeluOp"/>, which
    /// has kernels on every device, when every value inside has one reader and is not a graph output.
    /// </summary>
    private static bool TryGelu(C c, OnnxNode div)
    {
        if (div.OpType is not ("Div" or "Mul") || div.Inputs.Count != 2 || !c.Has(div, 0) || !c.Has(div, 1)) return false;
        var x = c.In(div, 0);
        if (x.IsConst || !HostTensor.IsFloatType(x.Type) || !IsScalar(c.In(div, 1), div.OpType == "Div" ? Math.Sqrt(2) : Math.Sqrt(0.5))) return false;
        if (Single(c, div.Outputs[0]) is not { OpType: "Erf" } erf) return false;
        if (Single(c, erf.Outputs[0]) is not { OpType: "Add" } add || !IsScalar(Other(c, add, erf.Outputs[0]), 1)) return false;
        if (Single(c, add.Outputs[0]) is not { OpType: "Mul" } mul) return false;
        string xName = div.Inputs[0];
        List<OnnxNode> chain = [div, erf, add, mul];
        string output;
        if (mul.Inputs.Contains(xName))
        {
            // x * (1 + erf) then * 0.5
            if (Single(c, mul.Outputs[0]) is not { OpType: "Mul" } half || !IsScalar(Other(c, half, mul.Outputs[0]), 0.5)) return false;
            chain.Add(half);
            output = half.Outputs[0];
        }
        else
        {
            // (x * 0.5) * (1 + erf): the other factor of mul is Mul(x, 0.5), whose only reader is mul.
            string other = mul.Inputs[0] == add.Outputs[0] ? mul.Inputs[1] : mul.Inputs[0];
            var producer = c.Model.Graph.Nodes.FirstOrDefault(n => n.Outputs.Contains(other));
            if (producer is not { OpType: "Mul" } || !producer.Inputs.Contains(xName) || Single(c, other) != mul
                || !IsScalar(Other(c, producer, xName), 0.5) || c.Skipped.Contains(producer)) return false;
            chain.Add(producer);
            output = mul.Outputs[0];
        }
        foreach (var n in chain.Skip(1)) c.Skipped.Add(n);
        c.EmitTo(div, output, new GeluOp(), [x], x.Type);
        return true;
    }

    private static OnnxSym? Other(C c, OnnxNode n, string one) =>
        n.Inputs.Count == 2 && (n.Inputs[0] == one || n.Inputs[1] == one) && c.Has(n, 0) && c.Has(n, 1)
            ? c.TrySym(n.Inputs[0] == one ? n.Inputs[1] : n.Inputs[0]) : null;

    private static bool IsScalar(OnnxSym? s, double value) =>
        s?.Const is { } t && t.Data.Length == 1 && Math.Abs(t.Data[0] - value) <= 1e-6 * Math.Abs(value);
}
