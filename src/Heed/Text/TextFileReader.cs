using System.Text;

namespace Heed.Text;

/// <summary>
/// Opens a text file as a stream of characters: UTF-8 by default (invalid bytes become U+FFFD and are counted),
/// UTF-16/UTF-32 when the file starts with their byte-order mark. Nothing is read into memory whole.
/// </summary>
internal static class TextFileReader
{
    private const int BufferSize = 64 * 1024;

    /// <summary>A reader over the file and the fallback that counts invalid UTF-8 (null for UTF-16/32 files).</summary>
    public static (TextReader Reader, CountingReplacementFallback? Invalid) Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, BufferSize, FileOptions.SequentialScan);
        try
        {
            Span<byte> head = stackalloc byte[4];
            int n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            ReadOnlySpan<byte> bom = head[..n];
            bool utf8Bom = bom.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]);
            bool otherBom = bom.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]) || bom.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF])
                            || bom.StartsWith((ReadOnlySpan<byte>)[0x00, 0x00, 0xFE, 0xFF]);
            stream.Position = utf8Bom ? 3 : 0;
            if (otherBom)
            {
                return (new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, BufferSize), null);
            }
            // Our own fallback instead of the default replacement one: same output, but we learn how many bytes were bad.
            var invalid = new CountingReplacementFallback();
            var encoding = (Encoding)new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).Clone();
            encoding.DecoderFallback = invalid;
            return (new StreamReader(stream, encoding, detectEncodingFromByteOrderMarks: false, BufferSize), invalid);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Reads a whole file (for formats that must be parsed whole, such as HTML).</summary>
    public static (string Text, int InvalidSequences) ReadAll(string path)
    {
        (TextReader reader, CountingReplacementFallback? invalid) = Open(path);
        using (reader)
        {
            string text = reader.ReadToEnd();
            return (text, invalid?.Count ?? 0);
        }
    }
}
