namespace GpuAnomaly.Engine.Onnx;

// The checks that need the whole graph: names (each value defined once, each read value defined somewhere in scope)
// and order (no cycle). Run once per model, top-down, since a subgraph may read any value of an enclosing graph.
public sealed partial class OnnxGraph
{
    /// <summary>The names of the enclosing graphs, innermost first, each mapped to where it is defined.</summary>
    internal sealed class Scope(IReadOnlyDictionary<string, string> names, Scope? parent)
    {
        public bool Contains(string name)
        {
            for (var s = this; s is not null; s = s.Parent)
                if (s.Names.ContainsKey(name)) return true;
            return false;
        }

        private IReadOnlyDictionary<string, string> Names { get; } = names;
        private Scope? Parent { get; } = parent;
    }

    /// <summary>
    /// Checks the graph (and its subgraphs), sets <see cref="TopologicalOrder"/> and the nodes'
    /// <see cref="OnnxNode.ImplicitInputs"/>, and returns the names of enclosing graphs that this graph reads.
    /// </summary>
    internal HashSet<string> Validate(Scope? outer)
    {
        var defined = new Dictionary<string, string>(StringComparer.Ordinal); // name -> location that defines it
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        var free = new HashSet<string>(StringComparer.Ordinal);

        foreach (var t in Initializers)
        {
            if (t.Name.Length == 0) throw Error(t.Location, "initializer has no name");
            if (!defined.TryAdd(t.Name, t.Location)) throw Error(t.Location, $"duplicate initializer name (also {defined[t.Name]})");
        }
        var inputNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in Inputs)
        {
            if (v.Name.Length == 0) throw Error(v.Location, "graph input has no name");
            if (!inputNames.Add(v.Name)) throw Error(v.Location, "duplicate graph input name");
            defined.TryAdd(v.Name, v.Location); // an input may share its name with an initializer, its default value
        }
        foreach (var node in Nodes)
            foreach (var o in node.Outputs)
            {
                if (o.Length == 0) continue;
                if (defined.TryGetValue(o, out var other))
                    throw Error(node.Location, $"output {OnnxFormatException.Quote(o)} is already defined by {(other == node.Location ? "this node" : other)}: a value has one producer");
                defined[o] = node.Location;
                producer[o] = node.Index;
            }

        var scope = new Scope(defined, outer);
        var deps = new List<int>[Nodes.Count];
        foreach (var node in Nodes)
        {
            var d = deps[node.Index] = [];
            for (int k = 0; k < node.Inputs.Count; k++)
            {
                string input = node.Inputs[k];
                if (input.Length == 0) continue;
                Resolve(input, node.Location, $"input {k}");
                if (producer.TryGetValue(input, out int p)) d.Add(p);
            }
            var implicitNames = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var sub in node.Subgraphs)
                foreach (var name in sub.Validate(scope))
                {
                    implicitNames.Add(name);
                    if (!defined.ContainsKey(name)) free.Add(name);
                    else if (producer.TryGetValue(name, out int p)) d.Add(p);
                }
            node.ImplicitInputs = [.. implicitNames];
        }

        var outputNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in Outputs)
        {
            if (v.Name.Length == 0) throw Error(v.Location, "graph output has no name");
            if (!outputNames.Add(v.Name)) throw Error(v.Location, "duplicate graph output name");
            Resolve(v.Name, v.Location, "graph output");
        }

        _order = Sort(deps);
        return free;

        void Resolve(string name, string location, string what)
        {
            if (defined.ContainsKey(name)) return;
            if (outer?.Contains(name) == true)
            {
                free.Add(name);
                return;
            }
            throw Error(location, $"{what} {OnnxFormatException.Quote(name)} is produced by no node and is not a graph input or initializer" +
                                  (outer is null ? "" : " nor a value of an enclosing graph"));
        }
    }

    /// <summary>Kahn's algorithm taking the earliest ready node first, so a sorted file keeps its order; a cycle is named.</summary>
    private OnnxNode[] Sort(List<int>[] deps)
    {
        int n = Nodes.Count;
        var pending = new int[n];
        var consumers = new List<int>[n];
        for (int i = 0; i < n; i++) consumers[i] = [];
        for (int i = 0; i < n; i++)
        {
            pending[i] = deps[i].Count;
            foreach (int p in deps[i]) consumers[p].Add(i);
        }
        var ready = new PriorityQueue<int, int>();
        for (int i = 0; i < n; i++) if (pending[i] == 0) ready.Enqueue(i, i);
        var order = new List<OnnxNode>(n);
        var done = new bool[n];
        while (ready.TryDequeue(out int i, out _))
        {
            order.Add(Nodes[i]);
            done[i] = true;
            foreach (int c in consumers[i])
                if (--pending[c] == 0) ready.Enqueue(c, c);
        }
        if (order.Count == n) return [.. order];

        // Every node left waits for another node left: walk "waits for" links until one repeats.
        int at = Array.IndexOf(done, false);
        var seenAt = new Dictionary<int, int>();
        var path = new List<int>();
        while (!seenAt.ContainsKey(at))
        {
            seenAt[at] = path.Count;
            path.Add(at);
            at = deps[at].First(p => !done[p]);
        }
        var cycle = path.Skip(seenAt[at]).Reverse().ToList(); // data-flow order: each feeds the next
        int first = cycle.IndexOf(cycle.Min());
        cycle = [.. cycle.Skip(first), .. cycle.Take(first)]; // from its earliest node in the file
        // A hostile file can make a cycle of every node: name the first few.
        var shown = cycle.Take(8).Select(i => Label(Nodes[i])).ToList();
        shown.Add(cycle.Count > 8 ? $"... ({cycle.Count} nodes in all)" : Label(Nodes[cycle[0]]));
        throw Error(Location, $"the nodes form a cycle, so no order can run them: {string.Join(" -> ", shown)}");
    }

    private static string Label(OnnxNode node) =>
        node.Name.Length > 0 ? OnnxFormatException.Quote(node.Name) : $"node[{node.Index}] ({node.OpType})";

    private OnnxFormatException Error(string location, string problem) => new(File, location, problem);
}
