using Microsoft.Extensions.AI;
using Heed.Text;

namespace Heed.Storage;

/// <summary>
/// Where a knowledge base keeps its files, chunks and embeddings, and how it finds candidates for a query. The RAG
/// pipeline reads folders, reranks and answers on top of any store: the embedded file index
/// (<see cref="EmbeddedKnowledgeStore"/>, the default) or PostgreSQL with pgvector (the Heed.Storage.Postgres package).
/// </summary>
public interface IKnowledgeStore : IDisposable
{
    /// <summary>Where the store lives, for messages: a file path, "memory", or a database without its password.</summary>
    string Location { get; }

    /// <summary>Whether a file belongs to the store itself (its index file and companions), so that ingest leaves it out.</summary>
    bool IsStoreFile(string path);

    /// <summary>
    /// Starts an ingest. Its changes become visible when <see cref="IKnowledgeStoreWriter.CommitAsync"/> returns or,
    /// for a store that commits file by file, as each file is put; a file's chunks are visible all or none.
    /// </summary>
    /// <param name="embeddings">Embeds the chunks put; null stores them without vectors.</param>
    /// <param name="cancellationToken">Stops waiting for another writer.</param>
    Task<IKnowledgeStoreWriter> BeginIngestAsync(ChunkEmbeddings? embeddings, CancellationToken cancellationToken);

    /// <summary>
    /// The candidates for a query: keyword matches, fused by reciprocal rank (k = 60) with the nearest vectors when a
    /// query vector is given, best first; ties in any ranking go to the chunk whose path, then ordinal, comes first.
    /// </summary>
    /// <param name="query">The query text.</param>
    /// <param name="embedding">Makes the query's embedding, which the store asks for only when it holds vectors it can compare; null: keywords only.</param>
    /// <param name="count">How many candidates at most.</param>
    /// <param name="cancellationToken">Stops the search.</param>
    Task<IReadOnlyList<StoreHit>> SearchAsync(string query, QueryEmbedding? embedding, int count, CancellationToken cancellationToken);

    /// <summary>The indexed files, in path order.</summary>
    Task<IReadOnlyList<IndexedFile>> GetFilesAsync(CancellationToken cancellationToken);

    /// <summary>How many chunks the store holds.</summary>
    Task<long> CountChunksAsync(CancellationToken cancellationToken);
}

/// <summary>One ingest's changes to a store. Disposing it without <see cref="CommitAsync"/> drops what was not yet committed.</summary>
public interface IKnowledgeStoreWriter : IAsyncDisposable
{
    /// <summary>The files the store holds under a folder (full path ending in a separator), by path, as this writer sees them.</summary>
    Task<IReadOnlyDictionary<string, IndexedFile>> GetFilesUnderAsync(string folderPrefix, CancellationToken cancellationToken);

    /// <summary>Adds a file or replaces it (and all its chunks).</summary>
    Task PutFileAsync(IndexedFile file, IReadOnlyList<TextChunk> chunks, CancellationToken cancellationToken);

    /// <summary>Records a new size and time for a file whose content did not change.</summary>
    Task RestampFileAsync(IndexedFile file, CancellationToken cancellationToken);

    /// <summary>Removes a file and its chunks.</summary>
    Task RemoveFileAsync(string path, CancellationToken cancellationToken);

    /// <summary>Makes the remaining changes visible; returns the store's file and chunk counts afterwards.</summary>
    Task<(int Files, long Chunks)> CommitAsync(CancellationToken cancellationToken);
}

/// <summary>How a store embeds the chunks it is given.</summary>
/// <param name="Generator">The embedding generator.</param>
/// <param name="BatchSize">Chunks per call to the generator.</param>
public sealed record ChunkEmbeddings(IEmbeddingGenerator<string, Embedding<float>> Generator, int BatchSize)
{
    /// <summary>The id stored with the vectors: the generator's model id, else its provider, else its type name.</summary>
    public string ModelId { get; } = ModelIdOf(Generator);

    /// <summary>The id <paramref name="generator"/>'s vectors are stored under.</summary>
    public static string ModelIdOf(IEmbeddingGenerator<string, Embedding<float>> generator)
    {
        EmbeddingGeneratorMetadata? metadata = generator.GetService<EmbeddingGeneratorMetadata>();
        return metadata?.DefaultModelId ?? metadata?.ProviderName ?? generator.GetType().Name;
    }
}

/// <summary>A query's embedding, made on demand.</summary>
/// <param name="ModelId">The model that makes it (see <see cref="ChunkEmbeddings.ModelIdOf"/>); only vectors of this model are compared.</param>
/// <param name="Embed">Makes the embedding.</param>
public sealed record QueryEmbedding(string ModelId, Func<CancellationToken, Task<ReadOnlyMemory<float>>> Embed);

/// <summary>A candidate found by a store.</summary>
/// <param name="Chunk">The passage.</param>
/// <param name="Score">The fusion score when a vector took part, else the keyword score.</param>
/// <param name="LexicalScore">Its BM25 score (over Heed's tokenizer in the embedded store, PostgreSQL's English full-text lexemes in PostgreSQL), or null when keywords did not find it.</param>
/// <param name="DenseSimilarity">Its cosine similarity to the query vector, or null.</param>
public sealed record StoreHit(TextChunk Chunk, double Score, double? LexicalScore, double? DenseSimilarity);
