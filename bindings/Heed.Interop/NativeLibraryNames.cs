namespace Heed.Interop;

/// <summary>
/// The names the declarations use for each native library. Heed's llama.cpp files carry a
/// "heed-" prefix in file name and soname (libheed-llama.so, libheed-ggml-base.so, ...) so that
/// another llama.cpp build in the same process (LLamaSharp's libllama.so) stays apart.
/// </summary>
public static class NativeLibraryNames
{
    /// <summary>libheed: Heed's kernels, capture and llama.cpp layout facts.</summary>
    public const string Heed = "heed";

    /// <summary>libheed-llama: libllama from llama.cpp v0.5.0.</summary>
    public const string Llama = "heed-llama";

    /// <summary>libheed-ggml: libggml, the backend loader of llama.cpp.</summary>
    public const string Ggml = "heed-ggml";

    /// <summary>libheed-ggml-base: libggml-base, tensors, devices and backends.</summary>
    public const string GgmlBase = "heed-ggml-base";

    /// <summary>Every library, in the order the loader needs them.</summary>
    public static IReadOnlyList<string> All { get; } = [GgmlBase, Ggml, Llama, Heed];
}
