using Heed.Interop.Native;

namespace Heed;

/// <summary>A native call (libheed or llama.cpp) failed; the message carries the native reason.</summary>
public class HeedNativeException : Exception
{
    /// <summary>Creates the exception with the native status, if any.</summary>
    public HeedNativeException(string message, HeedStatus status = HeedStatus.Internal, Exception? inner = null)
        : base(message, inner) => Status = status;

    /// <summary>libheed's status code, or <see cref="HeedStatus.Internal"/> for llama.cpp failures.</summary>
    public HeedStatus Status { get; }
}

/// <summary>A file is not a GGUF model llama.cpp can load: wrong magic, truncated, or rejected by the loader.</summary>
public class HeedModelFormatException : Exception
{
    /// <summary>Creates the exception for a model path.</summary>
    public HeedModelFormatException(string path, string message, Exception? inner = null)
        : base($"'{path}' is not a usable GGUF model: {message}", inner) => ModelPath = path;

    /// <summary>The file that was rejected.</summary>
    public string ModelPath { get; }
}
