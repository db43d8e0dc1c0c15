using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Heed.Text;

namespace Heed.Storage;

/// <summary>
/// The binary index file, little-endian:
/// header  "HEEDRAG\0", int32 format version (1), int32 flags (0);
/// payload the embedding model id (string, "" when none), int32 file count, then per file: path, int64 size,
///         int64 last-write ticks (UTC), content hash, title ("" when none), chunking settings, int32 chunk count, and per chunk:
///         int32 ordinal, int64 start, int64 end, text, int32 vector length (0: none), that many float32;
///         strings are BinaryWriter's (7-bit length, UTF-8);
/// footer  int64 payload length, SHA-256 of the payload (32 bytes), "HEEDEND\0".
/// A reader checks the length and the checksum before it parses anything.
/// </summary>
internal static class IndexFileFormat
{
    public const int Version = 1;
    private const int HeaderLength = 16;
    private const int FooterLength = 8 + 32 + 8;
    private static ReadOnlySpan<byte> HeaderMagic => "HEEDRAG\0"u8;
    private static ReadOnlySpan<byte> FooterMagic => "HEEDEND\0"u8;

    public static void Write(Stream stream, IndexFileContents contents)
    {
        Span<byte> header = stackalloc byte[HeaderLength];
        HeaderMagic.CopyTo(header);
        BitConverter.TryWriteBytes(header[8..], Version);
        BitConverter.TryWriteBytes(header[12..], 0);
        stream.Write(header);
        var hashing = new HashingWriteStream(stream);
        using (var writer = new BinaryWriter(new BufferedStream(hashing, 1 << 16), Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(contents.EmbeddingModel ?? "");
            writer.Write(contents.Files.Count);
            int next = 0;
            foreach (IndexedFile file in contents.Files)
            {
                writer.Write(file.Path);
                writer.Write(file.Size);
                writer.Write(file.LastWriteTimeUtc.Ticks);
                writer.Write(file.ContentHash);
                writer.Write(file.Title ?? "");
                writer.Write(file.Chunking);
                writer.Write(file.ChunkCount);
                for (int c = 0; c < file.ChunkCount; c++)
                {
                    IndexedChunk chunk = contents.Chunks[next++];
                    writer.Write(chunk.Chunk.Ordinal);
                    writer.Write(chunk.Chunk.StartOffset);
                    writer.Write(chunk.Chunk.EndOffset);
                    writer.Write(chunk.Chunk.Text);
                    float[] vector = chunk.Vector ?? [];
                    writer.Write(vector.Length);
                    writer.Write(MemoryMarshal.AsBytes(vector.AsSpan()));
                }
            }
            if (next != contents.Chunks.Count)
            {
                throw new InvalidOperationException($"Index contents are inconsistent: files list {next} chunks, {contents.Chunks.Count} given.");
            }
        }
        Span<byte> footer = stackalloc byte[FooterLength];
        BitConverter.TryWriteBytes(footer, hashing.BytesWritten);
        hashing.GetHash().CopyTo(footer[8..]);
        FooterMagic.CopyTo(footer[40..]);
        stream.Write(footer);
    }

    /// <summary>Reads and verifies an index file.</summary>
    /// <exception cref="HeedIndexCorruptException">Truncated, bad checksum, unknown version or unparsable.</exception>
    public static IndexFileContents Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        long length = stream.Length;
        if (length < HeaderLength + FooterLength)
        {
            throw Corrupt(path, $"it is {length} bytes long, shorter than an empty index (truncated)");
        }
        Span<byte> header = stackalloc byte[HeaderLength];
        stream.ReadExactly(header);
        if (!header[..8].SequenceEqual(HeaderMagic))
        {
            throw Corrupt(path, "it does not start with the Heed index signature (not an index file, or overwritten)");
        }
        int version = BitConverter.ToInt32(header[8..]);
        if (version != Version)
        {
            throw new HeedIndexCorruptException(path,
                $"The index file {path} has format version {version}; this Heed reads version {Version}. " +
                "Rebuild it with `heed rag ingest` (or delete it and ingest again), or use the Heed version that wrote it.");
        }
        Span<byte> footer = stackalloc byte[FooterLength];
        stream.Position = length - FooterLength;
        stream.ReadExactly(footer);
        long payloadLength = BitConverter.ToInt64(footer);
        if (!footer[40..].SequenceEqual(FooterMagic) || payloadLength != length - HeaderLength - FooterLength)
        {
            throw Corrupt(path, "its end marker or recorded length does not match the file size (truncated or partly written)");
        }
        byte[] expected = footer[8..40].ToArray();
        stream.Position = HeaderLength;
        if (!CryptographicOperations.FixedTimeEquals(HashRange(stream, payloadLength), expected))
        {
            throw Corrupt(path, "its SHA-256 checksum does not match its contents (damaged on disk)");
        }
        stream.Position = HeaderLength;
        try
        {
            return ReadPayload(stream, HeaderLength + payloadLength);
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or ArgumentException or OverflowException or IOException and not HeedIndexCorruptException)
        {
            throw Corrupt(path, $"its contents cannot be parsed ({e.Message})", e);
        }
    }

    private static IndexFileContents ReadPayload(FileStream stream, long payloadEnd)
    {
        using var reader = new BinaryReader(new BufferedStream(stream, 1 << 16), Encoding.UTF8, leaveOpen: true);
        string model = reader.ReadString();
        int fileCount = reader.ReadInt32();
        CheckCount(fileCount, "file");
        var files = new List<IndexedFile>(Math.Min(fileCount, 1 << 16));
        var chunks = new List<IndexedChunk>();
        for (int f = 0; f < fileCount; f++)
        {
            string path = reader.ReadString();
            long size = reader.ReadInt64();
            var lastWrite = new DateTime(reader.ReadInt64(), DateTimeKind.Utc);
            string hash = reader.ReadString();
            string title = reader.ReadString();
            string chunking = reader.ReadString();
            int chunkCount = reader.ReadInt32();
            CheckCount(chunkCount, "chunk");
            for (int c = 0; c < chunkCount; c++)
            {
                int ordinal = reader.ReadInt32();
                long start = reader.ReadInt64();
                long end = reader.ReadInt64();
                string text = reader.ReadString();
                int dimensions = reader.ReadInt32();
                CheckCount(dimensions, "vector element");
                float[]? vector = null;
                if (dimensions > 0)
                {
                    vector = new float[dimensions];
                    reader.BaseStream.ReadExactly(MemoryMarshal.AsBytes(vector.AsSpan()));
                }
                chunks.Add(new IndexedChunk(new TextChunk(path, ordinal, start, end, text), vector));
            }
            files.Add(new IndexedFile(path, size, lastWrite, hash, title.Length == 0 ? null : title, chunkCount, chunking));
        }
        if (reader.BaseStream.Position != payloadEnd)
        {
            throw new FormatException($"{payloadEnd - reader.BaseStream.Position} unread bytes after the last chunk");
        }
        return new IndexFileContents(model.Length == 0 ? null : model, files, chunks);
    }

    private static void CheckCount(int count, string what)
    {
        if (count < 0)
        {
            throw new FormatException($"negative {what} count {count}");
        }
    }

    private static byte[] HashRange(Stream stream, long count)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[1 << 20];
        while (count > 0)
        {
            int n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0)
            {
                throw new EndOfStreamException();
            }
            hash.AppendData(buffer, 0, n);
            count -= n;
        }
        return hash.GetHashAndReset();
    }

    private static HeedIndexCorruptException Corrupt(string path, string what, Exception? inner = null) =>
        new(path, $"The index file {path} is corrupt: {what}. Delete it and run `heed rag ingest` (or RagPipeline.IngestAsync) " +
                  $"again to rebuild it from your documents; if {path}.bak exists, Heed falls back to that last good copy.", inner);
}

/// <summary>What an index file holds: files in path order, and their chunks grouped by file in the same order.</summary>
internal sealed record IndexFileContents(string? EmbeddingModel, IReadOnlyList<IndexedFile> Files, IReadOnlyList<IndexedChunk> Chunks);

/// <summary>A chunk as stored: its text and place, and its embedding when one was made.</summary>
internal sealed record IndexedChunk(TextChunk Chunk, float[]? Vector);
