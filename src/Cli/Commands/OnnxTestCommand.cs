using System.CommandLine;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly onnx-test DIR...`: runs ONNX backend-test folders (model.onnx, test_data_set_*/input_*.pb and output_*.pb)
/// and compares with the suite's tolerance (|y - ref| &lt;= 1e-7 + 1e-3 |ref|, as numpy's assert_allclose in onnx's
/// runner; ints and bools exact). Exit 0 only when no test failed (unsupported ones do not fail the run).
/// </summary>
internal static class OnnxTestCommand
{
    public static Command Create(CliOutput output)
    {
        var dirs = new Argument<string[]>("dirs") { Description = "Backend-test folders, or folders holding them", Arity = ArgumentArity.OneOrMore }.NotAnOption();
        var device = CommonOptions.Device();
        var cmd = new Command("onnx-test", "Run ONNX backend-test folders (model.onnx + test_data_set_*) and print PASS / FAIL / UNSUPPORTED per test.") { dirs, device };
        cmd.SetAction(r =>
        {
            var tests = new List<string>();
            foreach (var d in r.GetValue(dirs)!)
            {
                if (!Directory.Exists(d)) throw new UsageException($"onnx-test: '{d}' is not a folder");
                if (File.Exists(Path.Combine(d, "model.onnx"))) tests.Add(d);
                else tests.AddRange(Directory.GetDirectories(d).Where(s => File.Exists(Path.Combine(s, "model.onnx"))).Order(StringComparer.Ordinal));
            }
            using var dev = Device.Open(r.GetValue(device)!);
            int passed = 0, failed = 0, unsupported = 0;
            foreach (var t in tests)
            {
                string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(t));
                try
                {
                    RunOne(t, dev);
                    output.Out.WriteLine($"PASS {name}");
                    passed++;
                }
                catch (OnnxUnsupportedException e)
                {
                    output.Out.WriteLine($"UNSUPPORTED {name}: {string.Join(", ", e.Ops.Select(o => o.OpType))}");
                    unsupported++;
                }
                catch (OnnxFeatureException e)
                {
                    output.Out.WriteLine($"UNSUPPORTED {name}: {e.Feature}");
                    unsupported++;
                }
                catch (Exception e) when (e is GpuAnomalyException or ArgumentException or InvalidOperationException or NotSupportedException
                                              or IndexOutOfRangeException or OverflowException or IOException)
                {
                    output.Out.WriteLine($"FAIL {name}: {GpuAnomalyCli.OneLine(e.Message)}");
                    failed++;
                }
            }
            output.Out.WriteLine($"onnx-test: {passed} passed, {failed} failed, {unsupported} unsupported");
            return failed == 0 ? GpuAnomalyCli.ExitOk : GpuAnomalyCli.ExitCheckFailed;
        });
        return cmd;
    }

    private static void RunOne(string dir, Device device)
    {
        var model = OnnxModel.Load(Path.Combine(dir, "model.onnx"));
        // Unsupported ops are reported before any data is read.
        var missing = model.UnsupportedOps(OnnxImporter.SupportedOps);
        if (missing.Count > 0) throw new OnnxUnsupportedException(model.File, missing);
        // Optional / sequence / map values are not tensors: refused from the model's declared types, before their data
        // (an OptionalProto or SequenceProto file) is misread as a TensorProto.
        OnnxImporter.CheckTensorValues(model);
        var sets = Directory.GetDirectories(dir, "test_data_set_*").Order(StringComparer.Ordinal).ToArray();
        if (sets.Length == 0) throw new UsageException($"{dir}: no test_data_set_* folder");
        foreach (var set in sets)
        {
            var inputs = new Dictionary<string, HostTensor>();
            var names = model.Graph.RuntimeInputs;
            for (int i = 0; File.Exists(Path.Combine(set, $"input_{i}.pb")); i++)
            {
                var t = OnnxTensor.Load(Path.Combine(set, $"input_{i}.pb"));
                string key = names.Any(n => n.Name == t.Name) ? t.Name : i < names.Count ? names[i].Name
                    : throw new UsageException($"{set}: input_{i}.pb has no model input");
                inputs[key] = Declared(HostTensor.From(t), names.First(n => n.Name == key).ElementType);
            }
            var results = OnnxInference.Run(model, inputs, device);
            var outs = model.Graph.Outputs;
            for (int i = 0; File.Exists(Path.Combine(set, $"output_{i}.pb")); i++)
            {
                string oname = i < outs.Count ? outs[i].Name : throw new UsageException($"{set}: output_{i}.pb has no model output");
                var expected = Declared(HostTensor.From(OnnxTensor.Load(Path.Combine(set, $"output_{i}.pb"))), outs[i].ElementType);
                Compare(oname, results[oname], expected);
            }
        }
    }

    /// <summary>
    /// ONNX's test data stores BFLOAT16 tensors as UINT16 holding the bits (onnx 1.12's backend tests); read them as
    /// the bfloat16 values the model declares.
    /// </summary>
    private static HostTensor Declared(HostTensor t, OnnxDataType declared) =>
        declared == OnnxDataType.BFloat16 && t.Type == OnnxDataType.UInt16
            ? new HostTensor(OnnxDataType.BFloat16, t.Dims, Array.ConvertAll(t.Data, v => (double)NdMath.BFloat16Bits((ushort)v)))
            : t;

    private static void Compare(string name, HostTensor actual, HostTensor expected)
    {
        if (actual.Shape != expected.Shape) throw new UsageException($"output '{name}' has shape {actual.Shape}, expected {expected.Shape}");
        bool exact = !expected.IsFloat;
        int bad = 0;
        double worst = 0;
        int first = -1;
        for (int i = 0; i < expected.Data.Length; i++)
        {
            double a = actual.Data[i], e = expected.Data[i];
            bool ok = exact ? a == e : (double.IsNaN(e) ? double.IsNaN(a) : a == e || Math.Abs(a - e) <= 1e-7 + 1e-3 * Math.Abs(e));
            if (ok) continue;
            if (first < 0) first = i;
            bad++;
            worst = Math.Max(worst, Math.Abs(a - e));
        }
        if (bad > 0)
            throw new UsageException($"output '{name}': {bad} of {expected.Data.Length} elements differ (first at {first}: {actual.Data[first]} vs {expected.Data[first]}; max |diff| {worst:G3})");
    }
}
