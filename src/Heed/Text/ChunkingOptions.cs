namespace Heed.Text;

/// <summary>How documents are cut into chunks.</summary>
public sealed record ChunkingOptions
{
    /// <summary>The most tokens a chunk may take, counted by the chunker's token counter (8 or more). Default 256.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>
    /// Overlap, in whole sentences: each chunk starts with up to this many of the previous chunk's last sentences,
    /// so a fact split across a boundary is whole in one chunk. The overlap is dropped where it would take more
    /// than half of <see cref="MaxTokens"/> or keep the next sentence from fitting. 0 turns it off. Default 1.
    /// </summary>
    public int OverlapSentences { get; init; } = 1;

    /// <summary>Throws when a value is out of range, saying which and what to use.</summary>
    public void Validate()
    {
        if (MaxTokens < 8)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "A chunk must allow at least 8 tokens; use 128 to 512 for retrieval.");
        }
        if (OverlapSentences is < 0 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(OverlapSentences), OverlapSentences, "Overlap is 0 to 64 sentences; 1 or 2 is usual.");
        }
    }
}
