namespace GpuAnomaly.Engine.Onnx;

/// <summary>A value during import: known (folded) on the host, or computed at run time by a graph node.</summary>
internal sealed class OnnxSym
{
    public HostTensor? Const { get; init; }
    public Value? Runtime { get; set; }
    public required OnnxDataType Type { get; init; }
    public required Shape Shape { get; init; }
    public bool IsConst => Const is not null;
}

/// <summary>
/// Turns an <see cref="OnnxModel"/> into an engine <see cref="Graph"/>: shapes made static by the options, every node
/// whose inputs are all known folded on the host (float64), the rest mapped onto engine ops by the entries of
/// <see cref="OnnxImporter"/>'s table (OnnxImporter.Entries.cs: adding an op is one entry plus, if needed, one Op).
/// </summary>
public static partial class OnnxImporter
{
    /// <summary>The op types the importer handles (standard domain).</summary>
    public static IReadOnlySet<string> SupportedOps => Entries.Keys.ToHashSet();

    public static OnnxImportedModel Import(OnnxModel model, OnnxImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new OnnxImportOptions();
        var unsupported = model.UnsupportedOps(SupportedOps);
        if (unsupported.Count > 0) throw new OnnxUnsupportedException(model.File, unsupported);
        CheckTensorValues(model);
        var c = new Context(model, options);
        c.BindInputs();
        // Constants first: patterns matched at a subgraph's first node read the constants of its later nodes.
        foreach (var node in model.Graph.Nodes.Where(n => n.OpType == "Constant" && n.Domain is "" or "ai.onnx"))
        {
            Entries["Constant"](c, node);
            c.Skipped.Add(node);
        }
        var order = model.Graph.TopologicalOrder();
        var knn = FindKnn(c, order);
        foreach (var node in order)
        {
            if (c.Skipped.Contains(node)) continue;
            try
            {
                if (knn.TryGetValue(node, out var match)) EmitKnn(c, match);
                else if (!TryGelu(c, node)) Entries[node.OpType](c, node);
            }
            catch (ArgumentException e) { throw new OnnxImportException(model.File, node.Location, $"{node.OpType}: {e.Message}"); }
            catch (ShapeMismatchException e) { throw new OnnxImportException(model.File, node.Location, $"{node.OpType}: {e.Message}"); }
        }
        return c.Finish();
    }

    internal sealed partial class Context(OnnxModel model, OnnxImportOptions options)
    {
        public OnnxModel Model { get; } = model;
        public GraphBuilder Builder { get; } = new();
        public HashSet<OnnxNode> Skipped { get; } = [];
        private readonly Dictionary<string, OnnxSym> _env = new(StringComparer.Ordinal);
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private readonly List<KeyValuePair<string, Shape>> _inputs = [];
        private Dictionary<string, List<OnnxNode>>? _consumers;

        public long Opset => Model.OpsetVersion("") ?? 1;

        public void BindInputs()
        {
            var g = Model.Graph;
            foreach (var t in g.Initializers) Set(t.Name, HostTensor.From(t));
            foreach (var i in g.RuntimeInputs)
            {
                if (options.ConstantInputs.TryGetValue(i.Name, out var bound))
                {
                    Set(i.Name, bound);
                    continue;
                }
                if (!HostTensor.IsFloatType(i.ElementType))
                    throw new OnnxImportException(Model.File, i.Location,
                        $"input '{i.Name}' is {i.ElementType.ProtoName()}: bind it at load time (runtime values are float32)");
                var shape = InputShape(i);
                _names.Add(i.Name);
                _env[i.Name] = new OnnxSym { Type = i.ElementType, Shape = shape, Runtime = Builder.Input(i.Name, shape) };
                _inputs.Add(new(i.Name, shape));
            }
        }

        private Shape InputShape(OnnxValueInfo i)
        {
            var declared = i.Shape;
            if (options.InputShapes.TryGetValue(i.Name, out var given))
            {
                if (declared is not null && (declared.Count != given.Length
                    || declared.Select((d, k) => d.IsKnown && d.Value != given[k]).Any(b => b)))
                    throw new OnnxImportException(Model.File, i.Location, $"input '{i.Name}' is {i.ShapeText}; the data given is [{string.Join(", ", given)}]");
                return new Shape(given);
            }
            if (declared is null) throw new OnnxImportException(Model.File, i.Location, $"input '{i.Name}' has no declared shape: give its shape");
            var dims = new int[declared.Count];
            for (int k = 0; k < dims.Length; k++)
            {
                var d = declared[k];
                if (d.Value is { } v) dims[k] = checked((int)v);
                else if (d.Symbol is { } s && options.Dims.TryGetValue(s, out int sv)) dims[k] = sv;
                else if (k == 0) dims[k] = options.BatchSize;
                else throw new OnnxImportException(Model.File, i.Location, $"input '{i.Name}' dim {k} ({d}) has no value: give it in the options' Dims");
            }
            return new Shape(dims);
        }

        public void Set(string name, HostTensor t) => _env[name] = new OnnxSym { Const = t, Type = t.Type, Shape = t.Shape };

        public void Set(string name, OnnxSym s) => _env[name] = s;

        public OnnxSym Sym(string name) => _env[name];

        /// <summary>The sym of a value computed so far, null when it is not (yet) known.</summary>
        public OnnxSym? TrySym(string name) => _env.GetValueOrDefault(name);

        public bool Has(OnnxNode n, int i) => i < n.Inputs.Count && n.Inputs[i] != "";

        public OnnxSym In(OnnxNode n, int i) =>
            Has(n, i) ? _env.TryGetValue(n.Inputs[i], out var s) ? s
                : throw new OnnxImportException(Model.File, n.Location, $"input '{n.Inputs[i]}' has no value")
            : throw new OnnxImportException(Model.File, n.Location, $"{n.OpType} needs input {i}");

        /// <summary>An input that must be known at import (shapes, axes, pads): a runtime one is refused, naming it.</summary>
        public HostTensor Const(OnnxNode n, int i) =>
            In(n, i).Const ?? throw new OnnxImportException(Model.File, n.Location,
                $"{n.OpType} input {i} '{n.Inputs[i]}' is computed at run time; the importer needs it known at import", n.Inputs[i]);

        /// <summary>The nodes reading a value (graph outputs count as a reader that is not a node: null).</summary>
        public IReadOnlyList<OnnxNode?> Consumers(string name)
        {
            if (_consumers is null)
            {
                _consumers = new(StringComparer.Ordinal);
                foreach (var node in Model.Graph.Nodes)
                    foreach (var i in node.Inputs.Concat(node.ImplicitInputs).Where(x => x != "").Distinct())
                        (_consumers.TryGetValue(i, out var l) ? l : _consumers[i] = []).Add(node);
            }
            var list = _consumers.TryGetValue(name, out var found) ? found.Cast<OnnxNode?>().ToList() : [];
            if (Model.Graph.Outputs.Any(o => o.Name == name)) list.Add(null);
            return list;
        }

        /// <summary>The runtime value of a sym; a known one becomes a float32 graph constant (once).</summary>
        public Value Runtime(OnnxSym s, string hint)
        {
            if (s.Runtime is { } v) return v;
            s.Runtime = Builder.Constant(Unique("const:" + hint), s.Const!.Floats(), s.Shape);
            return s.Runtime;
        }

        /// <summary>
        /// Binds output <paramref name="output"/> of <paramref name="n"/> to <paramref name="op"/> applied to the inputs:
        /// folded on the host when they are all known and the op has a float64 form, else a graph node.
        /// </summary>
        /// <remarks>
        /// An integer <paramref name="type"/> at run time is refused (runtime values are float32) unless
        /// <paramref name="index"/> says the op computes indices whose range the entry checked (<see cref="CheckIndexRange"/>),
        /// or the op only moves values that are such indices already.
        /// </remarks>
        public void Emit(OnnxNode n, Op op, IReadOnlyList<OnnxSym> inputs, OnnxDataType type, int output = 0, bool index = false) =>
            EmitTo(n, n.Outputs[output], op, inputs, type, index);

        /// <summary>As <see cref="Emit"/> into a name of the importer's own (a step of a multi-node mapping); returns the sym.</summary>
        public OnnxSym EmitTo(OnnxNode n, string name, Op op, IReadOnlyList<OnnxSym> inputs, OnnxDataType type, bool index = false)
        {
            if (op is HostKernelOp host && inputs.All(s => s.IsConst))
            {
                var data = host.Reference(inputs.Select(s => s.Const!.Data).ToArray(), inputs.Select(s => s.Shape).ToArray(), out var shape);
                for (int i = 0; i < data.Length; i++) data[i] = HostTensor.Round(type, data[i]);
                Set(name, new HostTensor(type, shape.Dims.ToArray(), data));
                return _env[name];
            }
            if (!HostTensor.IsFloatType(type) && !index && !MovesIndices(op, inputs)) throw IntegerAtRuntime(n, $"{type.ProtoName()} '{name}'");
            var values = inputs.Select((s, k) => Runtime(s, $"{name}.{k}")).ToArray();
            var v = Builder.Apply(Unique(name), op, values);
            return _env[name] = new OnnxSym { Type = type, Shape = v.Shape, Runtime = v };
        }

        public string Unique(string name)
        {
            string u = name;
            for (int k = 1; !_names.Add(u); k++) u = $"{name}#{k}";
            return u;
        }

        public OnnxImportedModel Finish()
        {
            var outputs = new List<OnnxImportedOutput>();
            var used = new HashSet<Value>();
            foreach (var o in Model.Graph.Outputs)
            {
                var s = _env.TryGetValue(o.Name, out var found) ? found
                    : throw new OnnxImportException(Model.File, o.Location, $"output '{o.Name}' has no value");
                var type = o.ElementType == OnnxDataType.Undefined ? s.Type : o.ElementType;
                if (s.Const is { } k)
                {
                    outputs.Add(new(o.Name, type, s.Shape, k));
                    continue;
                }
                var v = s.Runtime!;
                // An output needs a buffer of its own: an input, a constant or a value already output is copied.
                if (v.Kind != ValueKind.NodeOutput || !used.Add(v))
                    v = Builder.Apply(Unique(o.Name + ":copy"), new ReshapeCopyOp(v.Shape), v);
                Builder.Output(o.Name, v);
                outputs.Add(new(o.Name, type, v.Shape, null));
            }
            var graph = outputs.Any(o => o.Constant is null) ? Builder.Build() : null;
            return new OnnxImportedModel(graph, outputs, _inputs);
        }

        public OnnxImportException Error(OnnxNode n, string problem) => new(Model.File, n.Location, problem);
    }
}
