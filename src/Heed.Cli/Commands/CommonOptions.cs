using System.CommandLine;

namespace Heed.Cli.Commands;

/// <summary>Options several commands share.</summary>
internal static class CommonOptions
{
    public static Option<FileInfo> Model() => new("--model", "-m")
    {
        Description = "Path of a GGUF model file",
        Required = true,
    };

    public static Option<int> GpuLayers() => new("--gpu-layers")
    {
        Description = "Layers to offload to the GPU (-1 all, 0 none)",
        DefaultValueFactory = _ => -1,
    };

    public static Option<bool> Verbose() => new("--verbose")
    {
        Description = "Show llama.cpp's log",
    };

    /// <summary>Throws one clear error when <paramref name="file"/> is a folder or missing.</summary>
    public static void RequireFile(FileInfo file, string what, string hint = "")
    {
        if (Directory.Exists(file.FullName))
        {
            throw new ArgumentException($"{what} '{file.FullName}' is a directory; pass a file.");
        }
        if (!file.Exists)
        {
            throw new FileNotFoundException($"{what} '{file.FullName}' does not exist.{hint}", file.FullName);
        }
    }
}
