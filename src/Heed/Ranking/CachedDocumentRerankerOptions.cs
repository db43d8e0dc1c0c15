namespace Heed.Ranking;

/// <summary>How <see cref="CachedDocumentReranker"/> lays out prompts and how much document cache it keeps.</summary>
public sealed record CachedDocumentRerankerOptions
{
    /// <summary>
    /// The prompt and scoring, as for <see cref="InContextReranker"/>; <c>ContextSize</c> is the window
    /// (positions of one prompt). Documents are not numbered by default, so that a document's tokens
    /// are the same wherever it lands and its cache is reused at any place.
    /// </summary>
    public InContextRerankerOptions Ranking { get; init; } = new() { NumberDocuments = false };

    /// <summary>Documents whose cache is kept at once (one llama.cpp sequence each); at most 253.</summary>
    public int MaxCachedDocuments { get; init; } = 128;

    /// <summary>
    /// KV cells of the one cache that all sequences share: the instruction, every cached document
    /// and the query's tail. 0: eight windows. At least one window.
    /// </summary>
    public int CacheTokens { get; init; }

    /// <summary>Sequences the context needs: the query's, the shared instruction's, one per cached document.</summary>
    internal int SequenceCount => MaxCachedDocuments + 2;

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Ranking);
        Ranking.Validate();
        if (MaxCachedDocuments is < 1 or > 253)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxCachedDocuments), MaxCachedDocuments,
                "MaxCachedDocuments must be in [1, 253]: each cached document takes one of llama.cpp's 256 sequences, and the query and the instruction take two.");
        }
        if (CacheTokens < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(CacheTokens), CacheTokens, "CacheTokens must be 0 (eight windows) or positive.");
        }
    }
}
