namespace Heed.Storage;

/// <summary>
/// A knowledge-base store cannot be used: its server cannot be reached, it lacks something Heed needs (such as the
/// pgvector extension), or it holds a schema from a newer Heed. The message names the store and says what to do.
/// </summary>
public class HeedStoreException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was wrong and what to do.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public HeedStoreException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
