using Microsoft.Extensions.Logging;
using Heed.Search;
using Heed.Text;

namespace Heed.Storage;

/// <summary>
/// The default store: the whole index in memory (BM25 over the chunk texts, vectors scanned exactly) and, when opened
/// on a path, in one crash-safe file that is rewritten after each ingest. Zero setup, one machine.
/// Searches read an immutable snapshot without waiting; ingests run one at a time (and, on a file, one process at a
/// time) and swap in a new snapshot on commit, so a search sees the index before or after an ingest, never half of one.
/// </summary>
public sealed class EmbeddedKnowledgeStore : IKnowledgeStore
{
    private readonly ILogger _logger;
    private readonly Bm25Tokenizer _tokenizer;
    private readonly IndexFileStore? _file;
    private readonly bool _fallBackToBackup;
    private readonly SemaphoreSlim _ingestLock = new(1, 1);
    private volatile IndexSnapshot _snapshot;

    private EmbeddedKnowledgeStore(IndexFileStore? file, IndexFileContents? contents, Bm25Tokenizer tokenizer, bool fallBackToBackup, ILogger logger)
    {
        _file = file;
        _tokenizer = tokenizer;
        _fallBackToBackup = fallBackToBackup;
        _logger = logger;
        _snapshot = contents is null ? IndexSnapshot.Empty(tokenizer) : new IndexSnapshot(contents, tokenizer);
    }

    /// <summary>A store that lives only in memory.</summary>
    /// <param name="stopWords">BM25 stop words; null keeps every term.</param>
    /// <param name="logger">Receives warnings; null discards them.</param>
    public static EmbeddedKnowledgeStore CreateInMemory(IReadOnlyList<string>? stopWords = null, ILogger? logger = null) =>
        new(null, null, new Bm25Tokenizer(stopWords), true, logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

    /// <summary>
    /// Opens the index file at <paramref name="fullPath"/> (created by the first commit if it does not exist). A corrupt
    /// or missing file falls back to "&lt;path&gt;.bak", the last good copy, when <paramref name="fallBackToBackup"/> is set.
    /// </summary>
    /// <exception cref="HeedIndexCorruptException">The file is corrupt and no good backup exists.</exception>
    public static EmbeddedKnowledgeStore Open(string fullPath, bool fallBackToBackup = true, IReadOnlyList<string>? stopWords = null, ILogger? logger = null)
    {
        logger ??= Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        var file = new IndexFileStore(fullPath, logger);
        return new EmbeddedKnowledgeStore(file, file.Load(fallBackToBackup), new Bm25Tokenizer(stopWords), fallBackToBackup, logger);
    }

    /// <summary>The index file, or null in memory.</summary>
    public string? IndexPath => _file?.Path;

    /// <inheritdoc />
    public string Location => _file?.Path ?? "memory";

    /// <summary>Whether opening used the .bak copy because the index file was corrupt or missing.</summary>
    public bool RecoveredFromBackup => _file?.RecoveredFromBackup ?? false;

    /// <summary>The indexed files, in path order.</summary>
    public IReadOnlyList<IndexedFile> Files => _snapshot.FileView;

    /// <summary>Every chunk, grouped by file in path order.</summary>
    public IReadOnlyList<TextChunk> Chunks => _snapshot.ChunkView;

    /// <inheritdoc />
    public bool IsStoreFile(string path) =>
        _file is not null && (path == _file.Path || path == _file.BackupPath || path == _file.TempPath || path == _file.LockPath);

    /// <inheritdoc />
    public async Task<IKnowledgeStoreWriter> BeginIngestAsync(ChunkEmbeddings? embeddings, CancellationToken cancellationToken)
    {
        await _ingestLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        IDisposable? fileLock = null;
        try
        {
            fileLock = _file?.AcquireWriteLock();
            if (_file is not null && _file.ChangedOnDisk())
            {
                // another writer saved since we opened: start from its index, or its files would be lost on our save
                _logger.LogInformation("{Path} changed on disk since it was opened; reloading it before the ingest.", _file.Path);
                IndexFileContents? current = _file.Load(_fallBackToBackup);
                _snapshot = current is null ? IndexSnapshot.Empty(_tokenizer) : new IndexSnapshot(current, _tokenizer);
            }
            return new Writer(this, fileLock, embeddings is null ? null : new ChunkEmbedder(embeddings, _logger));
        }
        catch
        {
            fileLock?.Dispose();
            _ingestLock.Release();
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoreHit>> SearchAsync(string query, QueryEmbedding? embedding, int count, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        IndexSnapshot snapshot = _snapshot;
        if (snapshot.Chunks.Length == 0)
        {
            return [];
        }
        IReadOnlyList<Bm25Hit> lexical = snapshot.Lexical.Search(query, count);
        var lexicalScores = lexical.ToDictionary(h => h.Document, h => h.Score);
        if (embedding is null || !DenseUsable(snapshot, embedding.ModelId))
        {
            return lexical.Select(h => new StoreHit(snapshot.Chunks[h.Document], h.Score, h.Score, null)).ToList();
        }
        ReadOnlyMemory<float> vector = await embedding.Embed(cancellationToken).ConfigureAwait(false);
        List<(int Index, double Similarity)> dense = DenseRanking.Rank(vector.Span, snapshot.Vectors, count);
        if (dense.Count == 0)
        {
            _logger.LogWarning("No stored vector has the query embedding's {Dimensions} dimensions; searching with BM25 only. " +
                               "Ingest again with this embedding generator to re-embed the chunks.", vector.Length);
        }
        var denseScores = dense.ToDictionary(d => d.Index, d => d.Similarity);
        return ReciprocalRankFusion.Fuse([lexical.Select(h => h.Document).ToList(), dense.Select(d => d.Index).ToList()])
            .Take(count)
            .Select(f => new StoreHit(snapshot.Chunks[f.Id], f.Score,
                lexicalScores.TryGetValue(f.Id, out double l) ? l : null, denseScores.TryGetValue(f.Id, out double d) ? d : null))
            .ToList();
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<IndexedFile>> GetFilesAsync(CancellationToken cancellationToken) => Task.FromResult(Files);

    /// <inheritdoc />
    public Task<long> CountChunksAsync(CancellationToken cancellationToken) => Task.FromResult((long)_snapshot.Chunks.Length);

    /// <summary>Nothing to release: an ingest still running finishes cleanly, and the snapshot is garbage-collected.</summary>
    public void Dispose()
    {
    }

    /// <summary>Whether the snapshot's vectors can be compared with this model's; warns once per snapshot when not all can.</summary>
    private bool DenseUsable(IndexSnapshot snapshot, string model)
    {
        string? stored = snapshot.Contents.EmbeddingModel;
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

    /// <summary>Collects one ingest's changes over the snapshot it started from; the commit embeds, saves and swaps.</summary>
    private sealed class Writer : IKnowledgeStoreWriter
    {
        private readonly EmbeddedKnowledgeStore _store;
        private readonly IDisposable? _fileLock;
        private readonly ChunkEmbedder? _embedder;
        private readonly IndexSnapshot _before;
        private readonly SortedDictionary<string, (IndexedFile File, List<IndexedChunk> Chunks)> _files = new(StringComparer.Ordinal);
        private bool _released;

        public Writer(EmbeddedKnowledgeStore store, IDisposable? fileLock, ChunkEmbedder? embedder)
        {
            _store = store;
            _fileLock = fileLock;
            _embedder = embedder;
            _before = store._snapshot;
            foreach (IndexedFile file in _before.Contents.Files)
            {
                _files[file.Path] = (file, _before.ChunksOf(file).ToList());
            }
        }

        public Task<IReadOnlyDictionary<string, IndexedFile>> GetFilesUnderAsync(string folderPrefix, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyDictionary<string, IndexedFile>>(_before.Contents.Files
                .Where(f => f.Path.StartsWith(folderPrefix, StringComparison.Ordinal)).ToDictionary(f => f.Path, StringComparer.Ordinal));

        public Task PutFileAsync(IndexedFile file, IReadOnlyList<TextChunk> chunks, CancellationToken cancellationToken)
        {
            _files[file.Path] = (file, chunks.Select(c => new IndexedChunk(c, null)).ToList());
            return Task.CompletedTask;
        }

        public Task RestampFileAsync(IndexedFile file, CancellationToken cancellationToken)
        {
            _files[file.Path] = (file, _files[file.Path].Chunks);
            return Task.CompletedTask;
        }

        public Task RemoveFileAsync(string path, CancellationToken cancellationToken)
        {
            _files.Remove(path);
            return Task.CompletedTask;
        }

        public async Task<(int Files, long Chunks)> CommitAsync(CancellationToken cancellationToken)
        {
            List<IndexedChunk> chunks = _files.Values.SelectMany(v => v.Chunks).ToList();
            string? embeddingModel = _before.Contents.EmbeddingModel;
            if (_embedder is not null)
            {
                await _embedder.EmbedMissingAsync(chunks, embeddingModel, cancellationToken).ConfigureAwait(false);
                embeddingModel = _embedder.ModelId;
            }
            var contents = new IndexFileContents(embeddingModel, _files.Values.Select(v => v.File).ToList(), chunks);
            var after = new IndexSnapshot(contents, _store._tokenizer);
            cancellationToken.ThrowIfCancellationRequested(); // last point at which nothing has changed
            _store._file?.Save(contents);
            _store._snapshot = after;
            return (contents.Files.Count, chunks.Count);
        }

        public ValueTask DisposeAsync()
        {
            if (!_released)
            {
                _released = true;
                _fileLock?.Dispose();
                _store._ingestLock.Release();
            }
            return ValueTask.CompletedTask;
        }
    }
}
