using Heed.Ranking;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Heed.Text;
using Heed.Search;

namespace Heed.Rag;

/// <summary>What a <see cref="RagPipeline"/> chunks with, retrieves with and answers with.</summary>
public sealed record RagPipelineOptions
{
    /// <summary>Counts tokens for chunking, e.g. <c>model.Tokenizer.CountTokens</c>; null: <see cref="ApproximateTokenCounter.Count"/>.</summary>
    public Func<string, int>? TokenCounter { get; init; }

    /// <summary>
    /// A name for <see cref="TokenCounter"/> (e.g. the model file's name), stored with each file's chunking so that a
    /// different counter re-chunks the files; null: "custom".
    /// </summary>
    public string? TokenCounterName { get; init; }

    /// <summary>Chunk budget and overlap.</summary>
    public ChunkingOptions Chunking { get; init; } = new();

    /// <summary>Stop words for BM25 (e.g. <see cref="Bm25Tokenizer.EnglishStopWords"/>); null keeps every term.</summary>
    public IReadOnlyList<string>? StopWords { get; init; }

    /// <summary>Makes dense vectors for hybrid retrieval; null: BM25 only.</summary>
    public IEmbeddingGenerator<string, Embedding<float>>? EmbeddingGenerator { get; init; }

    /// <summary>Chunks sent to the embedding generator per call (1 or more). Default 32.</summary>
    public int EmbeddingBatchSize { get; init; } = 32;

    /// <summary>Reorders the fused candidates (e.g. the attention-based InContextReranker); null keeps the fused order.</summary>
    public IDocumentReranker? Reranker { get; init; }

    /// <summary>Writes answers for <see cref="RagPipeline.AskAsync"/>; null: AskAsync is unavailable.</summary>
    public IChatClient? ChatClient { get; init; }

    /// <summary>Candidates taken from each retriever before fusion and reranking (1 to 1000). Default 20.</summary>
    public int CandidateCount { get; init; } = 20;

    /// <summary>Sources given to the model for an answer (1 to 50). Default 4.</summary>
    public int AnswerSourceCount { get; init; } = 4;

    /// <summary>The most tokens an answer may take. Default 512.</summary>
    public int MaxAnswerTokens { get; init; } = 512;

    /// <summary>Whether opening falls back to "&lt;index&gt;.bak" when the index file is corrupt or missing. Default true.</summary>
    public bool FallBackToBackup { get; init; } = true;

    /// <summary>Receives warnings (invalid UTF-8, recovery from backup) and information; null discards them.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>Throws when a value is out of range, saying which and what to use.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Chunking, nameof(Chunking));
        Chunking.Validate();
        if (EmbeddingBatchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(EmbeddingBatchSize), EmbeddingBatchSize, "Send at least 1 chunk per embedding call (32 is usual).");
        }
        if (CandidateCount is < 1 or > 1000)
        {
            throw new ArgumentOutOfRangeException(nameof(CandidateCount), CandidateCount, "Take 1 to 1000 candidates per retriever (20 is usual).");
        }
        if (AnswerSourceCount is < 1 or > 50)
        {
            throw new ArgumentOutOfRangeException(nameof(AnswerSourceCount), AnswerSourceCount, "Give the model 1 to 50 sources (3 to 6 is usual).");
        }
        if (MaxAnswerTokens < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxAnswerTokens), MaxAnswerTokens, "An answer needs at least 1 token.");
        }
    }
}
