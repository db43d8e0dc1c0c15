using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Heed.Text;
using Heed.Storage;

namespace Heed.Rag;

/// <summary>
/// Retrieval-augmented generation end to end: ingest a folder of .txt/.md/.html files into sentence-aware chunks,
/// keep them in a store (the embedded file index by default, or any <see cref="IKnowledgeStore"/> such as PostgreSQL),
/// search (keywords fused by reciprocal rank with embeddings when a generator is given, then the optional reranker)
/// and answer with numbered citations. Thread-safe: what a concurrent search sees of an ingest is the store's
/// business (the embedded store: all of it or none; PostgreSQL: whole files).
/// </summary>
public sealed class RagPipeline : IDisposable
{
    private readonly RagPipelineOptions _options;
    private readonly IKnowledgeStore _store;
    private readonly bool _ownsStore;
    private readonly FolderIngest _ingest;
    private readonly ChunkEmbeddings? _embeddings;
    private volatile bool _disposed;

    private RagPipeline(RagPipelineOptions options, IKnowledgeStore store, bool ownsStore)
    {
        _options = options;
        _store = store;
        _ownsStore = ownsStore;
        ILogger logger = options.Logger ?? NullLogger.Instance;
        var chunker = new TextChunker(options.TokenCounter ?? ApproximateTokenCounter.Count, options.Chunking);
        string chunking = $"max {options.Chunking.MaxTokens} tokens, overlap {options.Chunking.OverlapSentences} sentence(s), " +
                          $"{(options.TokenCounter is null ? "approximate" : options.TokenCounterName ?? "custom")} token counter";
        _ingest = new FolderIngest(chunker, new DocumentLoader(logger), chunking, logger);
        _embeddings = options.EmbeddingGenerator is null ? null : new ChunkEmbeddings(options.EmbeddingGenerator, options.EmbeddingBatchSize);
    }

    /// <summary>
    /// Opens the embedded index at <paramref name="indexPath"/> (created by the first ingest if it does not exist). A
    /// corrupt or missing file falls back to "&lt;indexPath&gt;.bak", the last good copy, with a warning and
    /// <see cref="RecoveredFromBackup"/> set.
    /// </summary>
    /// <param name="indexPath">The index file, e.g. "docs.heedindex".</param>
    /// <param name="options">Chunking, retrieval and answering; null uses the defaults (BM25 only, no answers).</param>
    /// <param name="cancellationToken">Checked before reading.</param>
    /// <exception cref="HeedIndexCorruptException">The file is corrupt and no good backup exists.</exception>
    public static Task<RagPipeline> OpenAsync(string indexPath, RagPipelineOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(indexPath);
        options ??= new RagPipelineOptions();
        options.Validate();
        string fullPath = Path.GetFullPath(indexPath);
        if (Directory.Exists(fullPath))
        {
            throw new ArgumentException($"{fullPath} is a folder; the index is one file, e.g. {Path.Combine(fullPath, "index.heed")}.", nameof(indexPath));
        }
        cancellationToken.ThrowIfCancellationRequested();
        return Task.Run(() => new RagPipeline(options,
            EmbeddedKnowledgeStore.Open(fullPath, options.FallBackToBackup, options.StopWords, options.Logger), ownsStore: true), cancellationToken);
    }

    /// <summary>A pipeline whose index lives only in memory.</summary>
    public static RagPipeline CreateInMemory(RagPipelineOptions? options = null)
    {
        options ??= new RagPipelineOptions();
        options.Validate();
        return new RagPipeline(options, EmbeddedKnowledgeStore.CreateInMemory(options.StopWords, options.Logger), ownsStore: true);
    }

    /// <summary>A pipeline over any store, e.g. PostgreSQL's.</summary>
    /// <param name="store">The store.</param>
    /// <param name="options">Chunking, retrieval and answering; null uses the defaults. <see cref="RagPipelineOptions.StopWords"/>
    /// and <see cref="RagPipelineOptions.FallBackToBackup"/> are the embedded store's and have no effect here.</param>
    /// <param name="ownsStore">Whether disposing the pipeline disposes the store.</param>
    public static RagPipeline Create(IKnowledgeStore store, RagPipelineOptions? options = null, bool ownsStore = true)
    {
        ArgumentNullException.ThrowIfNull(store);
        options ??= new RagPipelineOptions();
        options.Validate();
        return new RagPipeline(options, store, ownsStore);
    }

    /// <summary>The store the pipeline keeps its chunks in.</summary>
    public IKnowledgeStore Store => _store;

    /// <summary>The embedded index file, or null (in memory, or another store).</summary>
    public string? IndexPath => Embedded?.IndexPath;

    /// <summary>Whether opening used the .bak copy because the embedded index file was corrupt or missing.</summary>
    public bool RecoveredFromBackup => Embedded?.RecoveredFromBackup ?? false;

    /// <summary>The indexed files of the embedded store, in path order (for another store: <see cref="IKnowledgeStore.GetFilesAsync"/>).</summary>
    /// <exception cref="NotSupportedException">The store is not the embedded one.</exception>
    public IReadOnlyList<IndexedFile> Files => RequireEmbedded().Files;

    /// <summary>Every chunk of the embedded store, grouped by file in path order.</summary>
    /// <exception cref="NotSupportedException">The store is not the embedded one.</exception>
    public IReadOnlyList<TextChunk> Chunks => RequireEmbedded().Chunks;

    /// <summary>How many chunks the embedded store holds (for another store: <see cref="IKnowledgeStore.CountChunksAsync"/>).</summary>
    /// <exception cref="NotSupportedException">The store is not the embedded one.</exception>
    public int ChunkCount => RequireEmbedded().Chunks.Count;

    private EmbeddedKnowledgeStore? Embedded => _store as EmbeddedKnowledgeStore;

    /// <summary>
    /// Brings the index up to date with a folder (recursively; hidden files left out): new files are added, changed
    /// ones (size or last-write time differ and the SHA-256 differs) re-indexed, deleted ones removed, unchanged ones
    /// skipped. Binary files are skipped with a reason. In the embedded store either the whole ingest is applied (and
    /// saved) or, when it is cancelled or fails, none of it; in PostgreSQL files are committed in groups as they are read, each file whole.
    /// </summary>
    /// <param name="directory">The folder to index.</param>
    /// <param name="progress">Receives progress per file and every few hundred chunks.</param>
    /// <param name="cancellationToken">Checked between files, sentences and embedding batches.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public async Task<IngestResult> IngestAsync(string directory, IProgress<IngestProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ObjectDisposedException.ThrowIf(_disposed, this);
        string root = Path.GetFullPath(directory);
        if (File.Exists(root))
        {
            throw new ArgumentException($"{root} is a file; give the folder that holds it (every .txt, .md and .html file in it is indexed).", nameof(directory));
        }
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"No folder at {root}; give the folder that holds your .txt, .md and .html files.");
        }
        return await Task.Run(async () =>
        {
            await using IKnowledgeStoreWriter writer = await _store.BeginIngestAsync(_embeddings, cancellationToken).ConfigureAwait(false);
            return await _ingest.RunAsync(writer, root, _store.IsStoreFile, progress, cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The chunks that best match a query: BM25 candidates, fused by reciprocal rank (k = 60) with the nearest
    /// embeddings when an embedding generator is set, then reordered by the reranker when one is set.
    /// </summary>
    /// <param name="query">What to look for; not empty.</param>
    /// <param name="topK">How many hits at most (1 to 1000).</param>
    /// <param name="cancellationToken">Passed to the embedding generator and the reranker.</param>
    /// <returns>Best first; empty when nothing matches or the index is empty.</returns>
    public async Task<IReadOnlyList<SearchHit>> SearchAsync(string query, int topK = 5, CancellationToken cancellationToken = default)
    {
        ValidateQuery(query, nameof(query));
        if (topK is < 1 or > 1000)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, "Ask for 1 to 1000 hits.");
        }
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        int candidates = Math.Max(topK, _options.CandidateCount);
        QueryEmbedding? embedding = _embeddings is null ? null : new QueryEmbedding(_embeddings.ModelId,
            token => _embeddings.Generator.GenerateVectorAsync(query, cancellationToken: token));
        IReadOnlyList<StoreHit> order = await _store.SearchAsync(query, embedding, candidates, cancellationToken).ConfigureAwait(false);
        if (order.Count == 0)
        {
            return [];
        }
        if (_options.Reranker is not { } reranker)
        {
            return order.Take(topK).Select((h, i) => new SearchHit(i + 1, h.Chunk, h.Score, h.LexicalScore, h.DenseSimilarity, null)).ToList();
        }
        string[] texts = order.Select(h => h.Chunk.Text).ToArray();
        IReadOnlyList<Heed.Ranking.RankedDocument> ranked =
            await reranker.RerankAsync(query, texts, Math.Min(topK, texts.Length), cancellationToken).ConfigureAwait(false);
        if (ranked.Any(r => r.Index < 0 || r.Index >= texts.Length) || ranked.Select(r => r.Index).Distinct().Count() != ranked.Count)
        {
            throw new InvalidOperationException(
                $"The reranker {reranker.GetType().Name} returned indexes outside 0..{texts.Length - 1} or the same document twice; it must rank each given document at most once.");
        }
        return ranked.Take(topK).Select((r, i) => new SearchHit(i + 1, order[r.Index].Chunk, r.Score, order[r.Index].LexicalScore,
            order[r.Index].DenseSimilarity, r.Score)).ToList();
    }

    /// <summary>
    /// Answers a question from the best <see cref="RagPipelineOptions.AnswerSourceCount"/> chunks with the chat client,
    /// asking it to cite them as [1], [2]…; returns the answer, the sources and the ones it actually cited. When
    /// nothing relevant is indexed, no model is asked and the answer says so.
    /// </summary>
    /// <param name="question">The question; not empty.</param>
    /// <param name="cancellationToken">Passed to retrieval and the chat client.</param>
    /// <exception cref="InvalidOperationException">No <see cref="RagPipelineOptions.ChatClient"/> is set.</exception>
    public async Task<RagAnswer> AskAsync(string question, CancellationToken cancellationToken = default)
    {
        ValidateQuery(question, nameof(question));
        IChatClient chat = _options.ChatClient ?? throw new InvalidOperationException(
            "AskAsync needs a chat model: set RagPipelineOptions.ChatClient (e.g. a LlamaChatClient over your model). SearchAsync works without one.");
        IReadOnlyList<SearchHit> hits = await SearchAsync(question, _options.AnswerSourceCount, cancellationToken).ConfigureAwait(false);
        Citation[] sources = hits.Select((h, i) => new Citation(i + 1, h.Chunk.SourcePath, h.Chunk.Ordinal, h.Chunk.StartOffset,
            h.Chunk.EndOffset, h.Chunk.Text, h.Score)).ToArray();
        if (sources.Length == 0)
        {
            return new RagAnswer(question, "I found nothing in the indexed documents about this question.", [], [], []);
        }
        List<ChatMessage> messages = AnswerPrompt.Build(question, sources);
        var chatOptions = new ChatOptions { MaxOutputTokens = _options.MaxAnswerTokens, Temperature = 0 };
        ChatResponse response = await chat.GetResponseAsync(messages, chatOptions, cancellationToken).ConfigureAwait(false);
        string text = response.Text;
        IReadOnlyList<int> cited = CitationParser.CitedNumbers(text, sources.Length);
        return new RagAnswer(question, text, cited.Select(n => sources[n - 1]).ToArray(), sources, cited);
    }

    /// <summary>
    /// Refuses further ingests and searches and, when the pipeline owns its store, disposes it. An ingest still
    /// running finishes cleanly; the embedding generator, reranker and chat client belong to the caller.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (_ownsStore)
        {
            _store.Dispose();
        }
    }

    private EmbeddedKnowledgeStore RequireEmbedded() => Embedded ?? throw new NotSupportedException(
        $"The pipeline's store ({_store.Location}) is not the embedded index; ask it with Store.GetFilesAsync and Store.CountChunksAsync.");

    private static void ValidateQuery(string? text, string name)
    {
        ArgumentNullException.ThrowIfNull(text, name);
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new ArgumentException($"The {name} is empty; give the text to look for.", name);
        }
    }
}
