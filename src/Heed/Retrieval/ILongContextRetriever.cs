namespace Heed.Retrieval;

/// <summary>Finds the evidence for a question in a document longer than the model's context.</summary>
public interface ILongContextRetriever
{
    /// <summary>Reads the document chunk by chunk and returns the sentences that answer the question.</summary>
    Task<RetrievalResult> RetrieveAsync(string question, TextReader document, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default);

    /// <summary>Retrieves, then generates an answer from the evidence; no answer when nothing was found.</summary>
    Task<AnswerResult> AnswerAsync(string question, TextReader document, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default);
}

/// <summary>A sentence kept as evidence.</summary>
/// <param name="Text">The sentence.</param>
/// <param name="Score">
/// Attention-based relevance (higher is better), comparable across the evidence of one result; for
/// <see cref="InfiniteRetriever"/> the share of the question's attention on the sentence's best phrase
/// above what a content-free question pays it, from one final pass over the evidence.
/// </param>
/// <param name="Offset">Character offset of the sentence in the source text.</param>
/// <param name="Length">Its length in characters.</param>
public sealed record Evidence(string Text, double Score, long Offset, int Length);

/// <summary>What retrieval found and how much it read.</summary>
/// <param name="Evidence">The sentences kept, in document order.</param>
/// <param name="ChunksProcessed">Forward passes over the document.</param>
/// <param name="TokensProcessed">Document tokens read.</param>
/// <param name="Found">
/// Whether some evidence stands clearly above what a content-free question attends to; false means
/// the document most likely does not answer the question (the evidence is then only the least unlikely).
/// </param>
public sealed record RetrievalResult(IReadOnlyList<Evidence> Evidence, int ChunksProcessed, long TokensProcessed, bool Found = true);

/// <summary>An answer generated from evidence.</summary>
/// <param name="Answer">The generated answer; null when retrieval found nothing (<see cref="RetrievalResult.Found"/> is false).</param>
/// <param name="Retrieval">The evidence it was generated from.</param>
public sealed record AnswerResult(string? Answer, RetrievalResult Retrieval);

/// <summary>Progress over the chunks of a document.</summary>
public sealed record RetrievalProgress(int ChunksDone, long CharactersRead, long? CharactersTotal);
