namespace GpuAnomaly.Engine.Onnx;

public static partial class OnnxImporter
{
    /// <summary>
    /// Refuses graph inputs and outputs that are not tensors (optional, sequence, map values) with an
    /// <see cref="OnnxFeatureException"/>: the engine has tensors only. Untyped ones (IR 1 files) pass.
    /// </summary>
    public static void CheckTensorValues(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var (v, what) in model.Graph.RuntimeInputs.Select(v => (v, "inputs")).Concat(model.Graph.Outputs.Select(v => (v, "outputs"))))
            if (v.Kind is OnnxValueKind.Optional or OnnxValueKind.Sequence or OnnxValueKind.Map or OnnxValueKind.Opaque or OnnxValueKind.SparseTensor)
                throw new OnnxFeatureException(model.File, v.Location, $"{KindName(v.Kind)} {what}");
    }

    private static string KindName(OnnxValueKind k) => k switch
    {
        OnnxValueKind.SparseTensor => "sparse tensor",
        _ => k.ToString().ToLowerInvariant(),
    };
}
