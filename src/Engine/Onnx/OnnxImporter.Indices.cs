namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// Integer values at run time. Runtime values are float32; a runtime value may still carry an integer ONNX type when it
/// is an index (ArgMax / ArgMin, TopK's indices, MaxPool's Indices): float32 holds every integer up to 2^24 exactly, so
/// the entry checks the index range at import and refuses larger ones, and the output is written back in its ONNX
/// type. Any other op computing an integer at run time is refused, naming a runtime input it depends on, so that a
/// caller holding the data (OnnxInference) binds it and imports again: then the node folds, exactly, in float64.
/// </summary>
public static partial class OnnxImporter
{
    /// <summary>The largest index range float32 represents exactly (every integer in [0, 2^24]).</summary>
    public const long MaxRuntimeIndex = 1L << 24;

    internal sealed partial class Context
    {
        private Dictionary<string, OnnxNode>? _producers;

        /// <summary>Refuses an index output of a range float32 cannot hold exactly.</summary>
        public void CheckIndexRange(OnnxNode n, long range)
        {
            if (range > MaxRuntimeIndex)
                throw Error(n, $"{n.OpType} computes indices up to {range} at run time; runtime values are float32, exact only up to 2^24");
        }

        /// <summary>Data movement of values that are all runtime indices already keeps them exact.</summary>
        private static bool MovesIndices(Op op, IReadOnlyList<OnnxSym> inputs) =>
            op is ReshapeCopyOp or TransposeOp or SliceOp or ConcatOp or GatherOp or ExpandOp
            && inputs.All(s => !s.IsConst && !HostTensor.IsFloatType(s.Type));

        /// <summary>
        /// The error for an op that would compute an integer at run time; its NeedsKnown is a runtime graph input the node
        /// depends on (the first in graph order), when there is one.
        /// </summary>
        public OnnxImportException IntegerAtRuntime(OnnxNode n, string what)
        {
            var runtime = _inputs.Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal);
            string? feed = RuntimeInputsBehind(n).FirstOrDefault(runtime.Contains);
            return new OnnxImportException(Model.File, n.Location,
                $"{n.OpType} computes {what} at run time; runtime values are float32 (bind the inputs it depends on)", feed);
        }

        /// <summary>The graph inputs a node's value depends on (through any number of nodes), in the graph's input order.</summary>
        private IEnumerable<string> RuntimeInputsBehind(OnnxNode n)
        {
            if (_producers is null)
            {
                _producers = new(StringComparer.Ordinal);
                foreach (var node in Model.Graph.Nodes)
                    foreach (var o in node.Outputs.Where(o => o != "")) _producers[o] = node;
            }
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var stack = new Stack<string>(n.Inputs.Concat(n.ImplicitInputs).Where(i => i != ""));
            while (stack.Count > 0)
            {
                var v = stack.Pop();
                if (!seen.Add(v)) continue;
                if (_producers.TryGetValue(v, out var p))
                    foreach (var i in p.Inputs.Concat(p.ImplicitInputs).Where(i => i != "")) stack.Push(i);
            }
            return Model.Graph.RuntimeInputs.Select(i => i.Name).Where(seen.Contains);
        }
    }
}
