namespace Heed.Interop;

/// <summary>The names the declarations use for each native library.</summary>
public static class NativeLibraryNames
{
    /// <summary>libheed: Heed's kernels, capture and llama.cpp layout facts.</summary>
    public const string Heed = "heed";

    /// <summary>libllama from llama.cpp v0.5.0.</summary>
    public const string Llama = "llama";

    /// <summary>libggml, the backend loader of llama.cpp.</summary>
    public const string Ggml = "ggml";

    /// <summary>libggml-base: devices and backends.</summary>
    public const string GgmlBase = "ggml-base";

    /// <summary>Every library, in the order the loader needs them.</summary>
    public static IReadOnlyList<string> All { get; } = [GgmlBase, Ggml, Llama, Heed];
}
