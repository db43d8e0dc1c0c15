namespace Heed.Storage;

/// <summary>
/// An index file could not be read: it is truncated, its checksum does not match, or it was written by an
/// unknown format version. The message names the file and says how to recover.
/// </summary>
public class HeedIndexCorruptException : IOException
{
    /// <summary>Creates the exception for an index file.</summary>
    /// <param name="path">The index file that could not be read.</param>
    /// <param name="message">What was wrong and what to do.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public HeedIndexCorruptException(string path, string message, Exception? inner = null)
        : base(message, inner)
    {
        IndexPath = path;
    }

    /// <summary>The index file that could not be read.</summary>
    public string IndexPath { get; }
}
