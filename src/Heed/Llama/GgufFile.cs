using System.Buffers.Binary;

namespace Heed.Llama;

/// <summary>
/// Checks a model path before llama.cpp sees it, so that a wrong path or a non-GGUF file is a
/// clear exception rather than a native failure: the file exists, is not a directory, starts
/// with the GGUF magic, has a known version and plausible counts.
/// </summary>
internal static class GgufFile
{
    private const uint Magic = 0x46554747; // "GGUF" little-endian
    private const int HeaderBytes = 24;    // magic, version, tensor count, metadata count

    public static void Validate(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (Directory.Exists(path))
        {
            throw new ArgumentException($"'{path}' is a directory; pass the path of a .gguf model file.", nameof(path));
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        }
        Span<byte> header = stackalloc byte[HeaderBytes];
        using (FileStream stream = File.OpenRead(path))
        {
            if (stream.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes)
            {
                throw new HeedModelFormatException(path, $"the file is {stream.Length} bytes, shorter than a GGUF header.");
            }
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic)
        {
            throw new HeedModelFormatException(path, "it does not start with the GGUF magic bytes; convert the model to GGUF first.");
        }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        if (version is < 2 or > 3)
        {
            throw new HeedModelFormatException(path, $"GGUF version {version} is not supported (2 or 3 are).");
        }
        long tensors = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
        long metadata = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        if (tensors is < 0 or > 1_000_000 || metadata is < 0 or > 1_000_000)
        {
            throw new HeedModelFormatException(path, $"implausible header counts ({tensors} tensors, {metadata} metadata entries).");
        }
    }
}
