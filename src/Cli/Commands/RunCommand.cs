using System.CommandLine;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Onnx;

namespace GpuAnomaly.Cli.Commands;

/// <summary>
/// `gpuanomaly run MODEL.onnx --input NAME=FILE.npy ... --out DIR`: imports the model for the inputs' shapes (int and
/// bool inputs bound at load), runs it and writes DIR/&lt;output&gt;.npy in each output's ONNX type.
/// </summary>
public static class RunCommand
{
    public static Command Create(CliOutput output)
    {
        var model = new Argument<string>("model") { Description = "An .onnx model" }.NotAnOption();
        var inputs = new Option<string[]>("--input", "-i") { Description = "NAME=FILE.npy; repeat for each input", AllowMultipleArgumentsPerToken = false };
        var outDir = new Option<string>("--out", "-o") { Description = "Folder for the outputs (<name>.npy)", Required = true };
        var device = CommonOptions.Device();
        var batch = CommonOptions.Batch(1, "Value of a symbolic batch dim of inputs not given (given inputs set their own shapes)");
        var cmd = new Command("run", "Run an ONNX model on .npy inputs and write its outputs as .npy files.") { model, inputs, outDir, device, batch };
        cmd.SetAction(r =>
        {
            var onnx = OnnxModel.Load(r.GetValue(model)!);
            var given = new Dictionary<string, HostTensor>();
            foreach (var spec in r.GetValue(inputs) ?? [])
            {
                int eq = spec.IndexOf('=');
                if (eq <= 0 || eq == spec.Length - 1) throw new UsageException($"--input '{spec}': expected NAME=FILE.npy");
                string name = spec[..eq];
                if (!given.TryAdd(name, NpyFile.Read(spec[(eq + 1)..]))) throw new UsageException($"--input '{name}' is given twice");
            }
            string dir = r.GetValue(outDir)!;
            using var dev = Device.Open(r.GetValue(device)!);
            var results = OnnxInference.Run(onnx, given, dev, r.GetValue(batch));
            Directory.CreateDirectory(dir);
            var written = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var (name, t) in results)
            {
                string file = FileName(name);
                for (int k = 2; !written.Add(file); k++) file = $"{FileName(name)}_{k}";
                NpyFile.Write(Path.Combine(dir, file + ".npy"), t);
                output.Out.WriteLine($"{name}: {t.Type.ProtoName()} {t.Shape} -> {Path.Combine(dir, file + ".npy")}");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>An output name as a file name: path separators, reserved and control characters become '_'.</summary>
    public static string FileName(string name)
    {
        var chars = name.Select(ch => char.IsControl(ch) || ch is '/' or '\\' or ':' or '*' or '?' or '"' or '<' or '>' or '|' ? '_' : ch).ToArray();
        string s = new string(chars).Trim().TrimEnd('.');
        return s is "" or "." or ".." ? "output" : s.Length > 200 ? s[..200] : s;
    }
}
