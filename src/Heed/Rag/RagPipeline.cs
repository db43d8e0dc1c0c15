using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Heed.Text;
using Heed.Search;
using Heed.Storage;

namespace Heed.Rag;

/// <summary>
/// Retrieval-augmented generation end to end: ingest a folder of .txt/.md/.html files into sentence-aware chunks,
/// index them (BM25 always, embeddings when a generator is given), search (reciprocal-rank fusion, then the optional
/// reranker) and answer with numbered citations. The index lives in memory and, when opened on a path, in one
/// crash-safe file that is rewritten after each ingest.
/// Thread-safe: searches read an immutable snapshot without waiting; ingests run one at a time and swap in a new
/// snapshot when done, so a concurrent search sees the index before or after an ingest, never half of one.
/// </summary>
public sealed class RagPipeline : IDisposable
{
    private readonly RagPipelineOptions _options;
    private readonly ILogger _logger;
    private readonly Bm25Tokenizer _tokenizer;
    private readonly TextChunker _chunker;
    private readonly DocumentLoader _loader;
    private readonly string _chunking;
    private readonly ChunkEmbedder? _embedder;
    private readonly IndexFileStore? _store;
    private readonly SemaphoreSlim _ingestLock = new(1, 1);
    private volatile IndexSnapshot _snapshot;
    private volatile bool _disposed;

    private RagPipeline(RagPipelineOptions options, IndexFileStore? store, IndexFileContents? contents)
    {
        _options = options;
        _logger = options.Logger ?? NullLogger.Instance;
        _tokenizer = new Bm25Tokenizer(options.StopWords);
        _chunker = new TextChunker(options.TokenCounter ?? ApproximateTokenCounter.Count, options.Chunking);
        _chunking = $"max {options.Chunking.MaxTokens} tokens, overlap {options.Chunking.OverlapSentences} sentence(s), " +
                    $"{(options.TokenCounter is null ? "approximate" : options.TokenCounterName ?? "custom")} token counter";
        _loader = new DocumentLoader(_logger);
        _embedder = options.EmbeddingGenerator is null ? null : new ChunkEmbedder(options.EmbeddingGenerator, options.EmbeddingBatchSize, _logger);
        _store = store;
        _snapshot = contents is null ? IndexSnapshot.Empty(_tokenizer) : new IndexSnapshot(contents, _tokenizer);
    }

    /// <summary>
    /// Opens the index at <paramref name="indexPath"/> (created by the first ingest if it does not exist). A corrupt
    /// or missing file falls back to "&lt;indexPath&gt;.bak", the last good copy, with a warning and
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
        return Task.Run(() =>
        {
            var store = new IndexFileStore(fullPath, options.Logger ?? NullLogger.Instance);
            IndexFileContents? contents = store.Load(options.FallBackToBackup);
            return new RagPipeline(options, store, contents);
        }, cancellationToken);
    }

    /// <summary>A pipeline whose index lives only in memory.</summary>
    public static RagPipeline CreateInMemory(RagPipelineOptions? options = null)
    {
        options ??= new RagPipelineOptions();
        options.Validate();
        return new RagPipeline(options, null, null);
    }

    /// <summary>The index file, or null for an in-memory pipeline.</summary>
    public string? IndexPath => _store?.Path;

    /// <summary>Whether opening used the .bak copy because the index file was corrupt or missing.</summary>
    public bool RecoveredFromBackup => _store?.RecoveredFromBackup ?? false;

    /// <summary>The indexed files, in path order.</summary>
    public IReadOnlyList<IndexedFile> Files => _snapshot.FileView;

    /// <summary>Every chunk, grouped by file in path order.</summary>
    public IReadOnlyList<TextChunk> Chunks => _snapshot.ChunkView;

    /// <summary>How many chunks the index holds.</summary>
    public int ChunkCount => _snapshot.Chunks.Length;

    /// <summary>
    /// Brings the index up to date with a folder (recursively; hidden files left out): new files are added, changed
    /// ones (size or last-write time differ and the SHA-256 differs) re-indexed, deleted ones removed, unchanged ones
    /// skipped. Binary files are skipped with a reason. Either the whole ingest is applied (and saved) or, when it is
    /// cancelled or fails, none of it.
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
        await _ingestLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => IngestLockedAsync(root, progress, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _ingestLock.Release();
        }
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
        IndexSnapshot snapshot = _snapshot;
        if (snapshot.Chunks.Length == 0)
        {
            return [];
        }
        int candidates = Math.Max(topK, _options.CandidateCount);
        IReadOnlyList<Bm25Hit> lexical = snapshot.Lexical.Search(query, candidates);
        var lexicalScores = lexical.ToDictionary(h => h.Document, h => h.Score);
        Dictionary<int, double>? denseScores = null;
        List<(int Chunk, double Score)> order;
        if (_options.EmbeddingGenerator is { } generator && DenseUsable(snapshot, generator))
        {
            ReadOnlyMemory<float> queryVector = await generator.GenerateVectorAsync(query, cancellationToken: cancellationToken).ConfigureAwait(false);
            List<(int Index, double Similarity)> dense = DenseRanking.Rank(queryVector.Span, snapshot.Vectors, candidates);
            denseScores = dense.ToDictionary(d => d.Index, d => d.Similarity);
            if (dense.Count == 0)
            {
                _logger.LogWarning("No stored vector has the query embedding's {Dimensions} dimensions; searching with BM25 only. " +
                                   "Ingest again with this embedding generator to re-embed the chunks.", queryVector.Length);
            }
            order = ReciprocalRankFusion.Fuse([lexical.Select(h => h.Document).ToList(), dense.Select(d => d.Index).ToList()])
                .Take(candidates).Select(f => (f.Id, f.Score)).ToList();
        }
        else
        {
            order = lexical.Select(h => (h.Document, h.Score)).ToList();
        }
        Dictionary<int, double>? rerankScores = null;
        if (_options.Reranker is { } reranker && order.Count > 0)
        {
            string[] texts = order.Select(o => snapshot.Chunks[o.Chunk].Text).ToArray();
            IReadOnlyList<Heed.Ranking.RankedDocument> ranked =
                await reranker.RerankAsync(query, texts, Math.Min(topK, texts.Length), cancellationToken).ConfigureAwait(false);
            if (ranked.Any(r => r.Index < 0 || r.Index >= texts.Length) || ranked.Select(r => r.Index).Distinct().Count() != ranked.Count)
            {
                throw new InvalidOperationException(
                    $"The reranker {reranker.GetType().Name} returned indexes outside 0..{texts.Length - 1} or the same document twice; it must rank each given document at most once.");
            }
            order = ranked.Select(r => (order[r.Index].Chunk, r.Score)).ToList();
            rerankScores = order.ToDictionary(o => o.Chunk, o => o.Score);
        }
        return order.Take(topK).Select((o, i) => new SearchHit(i + 1, snapshot.Chunks[o.Chunk], o.Score,
            lexicalScores.TryGetValue(o.Chunk, out double l) ? l : null,
            denseScores is not null && denseScores.TryGetValue(o.Chunk, out double d) ? d : null,
            rerankScores?[o.Chunk])).ToList();
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
    /// Refuses further ingests and searches. The ingest lock is not disposed, so an ingest still running finishes
    /// cleanly; the embedding generator, reranker and chat client belong to the caller.
    /// </summary>
    public void Dispose() => _disposed = true;

    private static void ValidateQuery(string? text, string name)
    {
        ArgumentNullException.ThrowIfNull(text, name);
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new ArgumentException($"The {name} is empty; give the text to look for.", name);
        }
    }

    private async Task<IngestResult> IngestLockedAsync(string root, IProgress<IngestProgress>? progress, CancellationToken cancellationToken)
    {
        using IDisposable? fileLock = _store?.AcquireWriteLock();
        if (_store is not null && _store.ChangedOnDisk())
        {
            // another writer saved since we opened: start from its index, or its files would be lost on our save
            _logger.LogInformation("{Path} changed on disk since it was opened; reloading it before the ingest.", _store.Path);
            IndexFileContents? current = _store.Load(_options.FallBackToBackup);
            _snapshot = current is null ? IndexSnapshot.Empty(_tokenizer) : new IndexSnapshot(current, _tokenizer);
        }
        var ingest = new FolderIngest(_chunker, _loader, _chunking, _embedder, _logger);
        (IndexFileContents contents, IngestResult result, long bytes) =
            await ingest.RunAsync(_snapshot, root, IsIndexFile, progress, cancellationToken).ConfigureAwait(false);
        var after = new IndexSnapshot(contents, _tokenizer);
        cancellationToken.ThrowIfCancellationRequested(); // last point at which nothing has changed
        if (_store is not null)
        {
            progress?.Report(new IngestProgress(IngestStage.Saving, result.FilesFound, result.FilesFound, bytes, bytes, null, result.ChunksAdded));
            _store.Save(contents);
        }
        _snapshot = after;
        progress?.Report(new IngestProgress(IngestStage.Done, result.FilesFound, result.FilesFound, bytes, bytes, null, result.ChunksAdded));
        return result;
    }

    /// <summary>Whether the snapshot's vectors can be compared with this generator's; warns once per snapshot when not all can.</summary>
    private bool DenseUsable(IndexSnapshot snapshot, IEmbeddingGenerator<string, Embedding<float>> generator)
    {
        string? stored = snapshot.Contents.EmbeddingModel;
        string model = ChunkEmbedder.ModelIdOf(generator);
        if (stored is not null && stored != model)
        {
            if (snapshot.TryClaimWarning())
            {
                _logger.LogWarning("The index was embedded with {Stored}, not {Model}; searching with BM25 only. " +
                                   "Ingest again with {Model} to re-embed it, or search with {Stored}.", stored, model, model, stored);
            }
            return false;
        }
        if (snapshot.VectorCount < snapshot.Chunks.Length && snapshot.TryClaimWarning())
        {
            _logger.LogWarning("{Missing} of {Total} chunks have no embedding (they were ingested without an embedding generator), so only " +
                               "BM25 can find them. Ingest again with the embedding generator to embed them.",
                snapshot.Chunks.Length - snapshot.VectorCount, snapshot.Chunks.Length);
        }
        return snapshot.VectorCount > 0;
    }

    private bool IsIndexFile(string path) =>
        _store is not null && (path == _store.Path || path == _store.BackupPath || path == _store.TempPath || path == _store.LockPath);
}
