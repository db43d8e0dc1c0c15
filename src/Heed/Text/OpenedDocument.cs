using Microsoft.Extensions.Logging;

namespace Heed.Text;

/// <summary>
/// A document open for streaming: its path, title and a reader over its text. Large text files are never held
/// whole; the count of invalid UTF-8 sequences is known once the reader has been read to the end.
/// </summary>
internal sealed class OpenedDocument : IDisposable
{
    private readonly CountingReplacementFallback? _invalid;
    private readonly int _invalidBeforeReading;

    public OpenedDocument(string sourcePath, string? title, TextReader reader, CountingReplacementFallback? invalid, int invalidBeforeReading = 0)
    {
        SourcePath = sourcePath;
        Title = title;
        Reader = reader;
        _invalid = invalid;
        _invalidBeforeReading = invalidBeforeReading;
    }

    public string SourcePath { get; }

    public string? Title { get; }

    public TextReader Reader { get; }

    /// <summary>Invalid UTF-8 sequences replaced so far (all of them once the reader is at its end).</summary>
    public int InvalidUtf8Sequences => _invalidBeforeReading + (_invalid?.Count ?? 0);

    /// <summary>Logs the one warning a file with invalid UTF-8 deserves.</summary>
    public void WarnIfInvalidUtf8(ILogger logger)
    {
        if (InvalidUtf8Sequences > 0)
        {
            logger.LogWarning("{Path} is not valid UTF-8: {Count} invalid byte sequence(s) were replaced with U+FFFD. " +
                              "Save the file as UTF-8 to index its exact text.", SourcePath, InvalidUtf8Sequences);
        }
    }

    public void Dispose() => Reader.Dispose();
}
