namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// Imports and runs an ONNX model on host tensors: float inputs feed the graph, the others are bound at import (so the
/// graph is imported for these inputs' shapes and values); outputs come back in their ONNX types.
/// </summary>
public static class OnnxInference
{
    public static IReadOnlyDictionary<string, HostTensor> Run(OnnxModel model, IReadOnlyDictionary<string, HostTensor> inputs, Device device,
        int batchSize = 1)
    {
        var runtime = model.Graph.RuntimeInputs.ToDictionary(i => i.Name);
        foreach (var name in inputs.Keys)
            if (!runtime.ContainsKey(name))
                throw new GraphInputException(name, $"the model has no input '{name}' (its inputs: {string.Join(", ", runtime.Keys)})");
        // Every non-float input (all integer types and BOOL) is bound at load; so is an input whose data no node reads
        // (unused, or only CastLike's type source): it need not match its declared shape, backend tests give a placeholder.
        var read = model.Graph.AllNodes().SelectMany(n => n.Inputs.Where((_, k) => !(n.OpType == "CastLike" && k == 1)).Concat(n.ImplicitInputs))
            .Concat(model.Graph.Outputs.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        var bound = inputs.Where(kv => !HostTensor.IsFloatType(runtime[kv.Key].ElementType) || !read.Contains(kv.Key))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        var fed = inputs.Where(kv => !bound.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
        OnnxImportedModel imported;
        while (true)
        {
            try
            {
                imported = OnnxImporter.Import(model, new OnnxImportOptions
                {
                    BatchSize = batchSize,
                    ConstantInputs = bound,
                    InputShapes = fed.ToDictionary(kv => kv.Key, kv => kv.Value.Dims),
                });
                break;
            }
            // A float input the model uses as a parameter (Clip's bounds, a Pad value), or one an integer result depends on
            // (it then folds): we hold its data, so bind it.
            catch (OnnxImportException e) when (e.NeedsKnown is { } name && fed.Remove(name, out var t))
            {
                bound[name] = t;
            }
        }
        var results = new Dictionary<string, HostTensor>();
        if (imported.Graph is { } graph)
        {
            using var exec = new Executor(graph, device);
            foreach (var (name, shape) in imported.Inputs)
            {
                if (!fed.TryGetValue(name, out var t)) throw new GraphInputException(name, $"input '{name}' (shape {shape}) was not given");
                exec.SetInput(name, t.Floats());
            }
            exec.Run();
            foreach (var o in imported.Outputs.Where(o => o.Constant is null))
            {
                var y = exec.Output(o.Name).ToArray();
                results[o.Name] = new HostTensor(o.ElementType, o.Shape.Dims.ToArray(), Array.ConvertAll(y, v => (double)v));
            }
        }
        foreach (var o in imported.Outputs.Where(o => o.Constant is not null)) results[o.Name] = o.Constant!;
        return results;
    }
}
