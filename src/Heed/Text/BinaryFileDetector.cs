namespace Heed.Text;

/// <summary>
/// Tells binary files from text the way git does: a NUL byte in the first 8 KB means binary. Files that
/// start with a UTF-16/UTF-32 byte-order mark are text even though they contain NUL bytes.
/// </summary>
internal static class BinaryFileDetector
{
    public const int SniffLength = 8192;

    /// <summary>Why the file is binary, or null when it looks like text.</summary>
    public static string? BinaryReason(string path)
    {
        Span<byte> head = stackalloc byte[SniffLength];
        int n;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None))
        {
            n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        ReadOnlySpan<byte> bytes = head[..n];
        if (HasUnicodeByteOrderMark(bytes))
        {
            return null;
        }
        int nul = bytes.IndexOf((byte)0);
        return nul < 0 ? null : $"binary file: NUL byte at offset {nul} in the first {SniffLength / 1024} KB";
    }

    private static bool HasUnicodeByteOrderMark(ReadOnlySpan<byte> bytes) =>
        bytes.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]) || bytes.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF]) ||
        bytes.StartsWith((ReadOnlySpan<byte>)[0x00, 0x00, 0xFE, 0xFF]);
}
