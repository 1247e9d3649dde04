using System.Runtime.InteropServices;
using System.Text;
using GpuAnomaly.Cli.Images;
using GpuAnomaly.Engine.Onnx;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.MemoryBank;
using GpuAnomaly.Models.StudentTeacher;
using GpuAnomaly.Models.WindowVit;

namespace GpuAnomaly.Fuzz;

/// <summary>
/// The fuzz targets, shared by the SharpFuzz harness (fuzz/GpuAnomaly.Fuzz) and the replay tests
/// (tests/GpuAnomaly.Tests/Fuzz), which compile this file as it is. Each target feeds one input to a parser and
/// swallows only the typed error that parser documents; any other exception escapes, and the fuzzer counts it as
/// a crash (see docs/FUZZING.md).
/// </summary>
public static class FuzzTargets
{
    public static readonly string[] Names = ["safetensors", "image", "config", "onnx"];

    /// <summary>The target named <paramref name="name"/>, or null.</summary>
    public static Action<byte[]>? Get(string name) => name switch
    {
        "safetensors" => Safetensors,
        "image" => Image,
        "config" => Config,
        "onnx" => Onnx,
        _ => null,
    };

    [ThreadStatic] private static string? _scratch;

    /// <summary>Deletes this thread's scratch file of <see cref="Safetensors"/>, if any (the tests call it).</summary>
    public static void DeleteScratch()
    {
        if (_scratch is not null) File.Delete(_scratch);
        _scratch = null;
    }

    /// <summary>
    /// The input as a safetensors file (<see cref="SafetensorsFile"/> reads files, so it is written to a scratch file
    /// first, in /dev/shm where there is one): opened, then every tensor read as the models read it.
    /// Expected: <see cref="SafetensorsException"/>.
    /// </summary>
    public static void Safetensors(byte[] input)
    {
        _scratch ??= System.IO.Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : System.IO.Path.GetTempPath(),
            $"gpuanomaly-fuzz-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}.safetensors");
        File.WriteAllBytes(_scratch, input);
        try
        {
            using var file = SafetensorsFile.Open(_scratch);
            foreach (var e in file.Tensors)
            {
                if (SafetensorsDTypes.IsFloat(e.DTypeTag)) file.ReadWeight(e.Name);
                else if (e.DTypeTag == SafetensorsDTypes.Ternary) file.ReadTernary(e.Name);
                else file.ReadBytes(e.Name);
            }
            _ = file.Metadata.Count;
        }
        catch (SafetensorsException) { }
    }

    /// <summary>
    /// The input as an image file, through the CLI's decoder (size, signature and pixel-count guards included);
    /// inputs of odd length decode to gray, even ones to RGB, then convert to a model input of 7 x 5.
    /// Expected: <see cref="ImageDecodeException"/>.
    /// </summary>
    public static void Image(byte[] input)
    {
        try
        {
            var image = ImageFile.Decode("fuzz-input", input, input.Length % 2 == 1 ? 1 : 3);
            ImageFile.ToTensor(image, 7, 5);
        }
        catch (ImageDecodeException) { }
    }

    /// <summary>
    /// The input as a model config: byte 0 picks the parser (mod 3: uninformed_students, window_vit, memory_bank)
    /// and, with its top bit set, reads the rest as raw UTF-16LE (a metadata string may hold unpaired surrogates),
    /// else as UTF-8. Expected: <see cref="SafetensorsException"/>, what the parsers throw for a bad config.
    /// </summary>
    public static void Config(byte[] input)
    {
        if (input.Length == 0) return;
        byte selector = input[0];
        var rest = input.AsSpan(1);
        string json = (selector & 0x80) != 0
            ? new string(MemoryMarshal.Cast<byte, char>(rest[..(rest.Length & ~1)]))
            : Encoding.UTF8.GetString(rest);
        try
        {
            switch (selector % 3)
            {
                case 0: UninformedStudentsConfig.Parse("fuzz-input", Meta(UninformedStudentsConfig.Architecture, json)); break;
                case 1: WindowVitConfig.Parse("fuzz-input", Meta(WindowVitConfig.Architecture, json)); break;
                default:
                    var c = MemoryBankConfig.Parse("fuzz-input", Meta(MemoryBankConfig.Architecture, json));
                    _ = c.ToJsonString(); // what `gpuanomaly fit` writes back
                    break;
            }
        }
        catch (SafetensorsException) { }
    }

    /// <summary>
    /// The input as an ONNX model (<see cref="OnnxModel.Parse"/>, no base directory, so external data is refused):
    /// every initializer and tensor attribute decoded as an importer would, attributes printed, op counts taken;
    /// then the same bytes as a lone TensorProto (<see cref="OnnxTensor.Parse"/>). Expected: <see cref="OnnxFormatException"/>.
    /// </summary>
    public static void Onnx(byte[] input)
    {
        try
        {
            var model = OnnxModel.Parse(input, "fuzz-input", null);
            foreach (var t in model.Graph.Initializers) Decode(t);
            foreach (var node in model.Graph.AllNodes())
                foreach (var a in node.Attributes.Values)
                {
                    _ = a.ToString();
                    if (a.Type == OnnxAttributeType.Tensor) Decode(a.AsTensor());
                    if (a.Type == OnnxAttributeType.Tensors) foreach (var t in a.AsTensors()) Decode(t);
                }
            _ = model.OpCounts();
        }
        catch (OnnxFormatException) { }
        try { Decode(OnnxTensor.Parse(input, "fuzz-input")); }
        catch (OnnxFormatException) { }

        // The conversion a tensor's type allows; a wrong-type call is a typed error too, so each is tried.
        static void Decode(OnnxTensor t)
        {
            foreach (var convert in new Func<OnnxTensor, object>[] { x => x.ToFloatArray(), x => x.ToInt64Array(), x => x.ToInt32Array(),
                         x => x.ToDoubleArray(), x => x.ToBoolArray(), x => x.ToStringArray(), x => x.RawData() })
            {
                try { convert(t); }
                catch (OnnxFormatException) { }
            }
        }
    }

    private static Dictionary<string, string> Meta(string architecture, string config) =>
        new(StringComparer.Ordinal) { ["architecture"] = architecture, ["config"] = config };
}
