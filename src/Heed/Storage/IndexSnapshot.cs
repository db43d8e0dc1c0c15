using Heed.Text;
using Heed.Search;

namespace Heed.Storage;

/// <summary>
/// One immutable state of the index: files, chunks (grouped by file, files in path order), their vectors and the
/// BM25 index over the chunk texts. Queries read a snapshot without locks; ingest builds a new one and swaps it in.
/// </summary>
internal sealed class IndexSnapshot
{
    private readonly Dictionary<string, int> _firstChunkOfFile = new(StringComparer.Ordinal);
    private int _warned;

    public IndexSnapshot(IndexFileContents contents, Bm25Tokenizer tokenizer)
    {
        Contents = contents;
        Chunks = contents.Chunks.Select(c => c.Chunk).ToArray();
        Vectors = contents.Chunks.Select(c => c.Vector).ToArray();
        VectorCount = Vectors.Count(v => v is not null);
        Lexical = new Bm25Index(Chunks.Select(c => c.Text).ToArray(), tokenizer);
        int next = 0;
        foreach (IndexedFile file in contents.Files)
        {
            _firstChunkOfFile[file.Path] = next;
            next += file.ChunkCount;
        }
        Files = contents.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        FileView = contents.Files.ToArray().AsReadOnly();
        ChunkView = Chunks.AsReadOnly();
    }

    public static IndexSnapshot Empty(Bm25Tokenizer tokenizer) => new(new IndexFileContents(null, [], []), tokenizer);

    public IndexFileContents Contents { get; }

    public IReadOnlyDictionary<string, IndexedFile> Files { get; }

    public TextChunk[] Chunks { get; }

    /// <summary>The files, in path order, for callers (who must not be able to change a snapshot).</summary>
    public IReadOnlyList<IndexedFile> FileView { get; }

    /// <summary>The chunks, for callers.</summary>
    public IReadOnlyList<TextChunk> ChunkView { get; }

    public float[]?[] Vectors { get; }

    public int VectorCount { get; }

    public Bm25Index Lexical { get; }

    /// <summary>True the first time only: lets a search warn once per snapshot about its embeddings, not once per query.</summary>
    public bool TryClaimWarning() => Interlocked.Exchange(ref _warned, 1) == 0;

    /// <summary>The stored chunks (with vectors) of one file.</summary>
    public IEnumerable<IndexedChunk> ChunksOf(IndexedFile file)
    {
        int first = _firstChunkOfFile[file.Path];
        for (int i = 0; i < file.ChunkCount; i++)
        {
            yield return Contents.Chunks[first + i];
        }
    }
}
