using GpuAnomaly.Cli;

return GpuAnomalyCli.Run(args);
