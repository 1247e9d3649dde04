using BenchmarkDotNet.Running;
using GpuAnomaly.Bench;

if (args.Length > 0 && args[0] == "soak") return SoakBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "onnx") return OnnxSideBySide.Run(args[1..]);
if (args.Length > 0 && args[0] == "conv-cpu") Conv2dCpuQuick.Run(args[1..]);
else if (args.Length > 0 && args[0] == "conv-direct") ConvDirectBench.Run(args[1..]);
else if (args.Length > 0 && args[0] == "attention-cpu") WindowAttentionBench.Quick(args[1..]);
else if (args.Length > 0 && args[0] == "dwconv-cpu") DwConvGeluBench.Quick(args[1..]);
else if (args.Length > 0 && args[0] == "ternary-cpu") TernaryLinearBench.Quick(args[1..]);
else if (args.Length > 0 && args[0] == "vim-cpu") VimBench.Quick(args[1..]);
else if (args.Length > 0 && args[0] == "knn-cpu") KnnBench.Quick(args[1..]);
else if (args.Length > 0 && args[0] == "lanes") LanesBench.Run(args[1..]);
else BenchmarkSwitcher.FromAssembly(typeof(Conv2dBench).Assembly).Run(args);
return 0;
