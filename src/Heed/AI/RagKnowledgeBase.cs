using Heed.Hosting;
using Heed.Rag;

namespace Heed.AI;

/// <summary>
/// The tools' <see cref="IKnowledgeBase"/> over Heed's <see cref="RagPipeline"/>: BM25 (and
/// embeddings, and the attention reranker, when the pipeline has them). Ingest takes folders;
/// transient I/O failures of the index file are retried by <see cref="HeedResilience.StorePipeline"/>.
/// </summary>
public sealed class RagKnowledgeBase : IKnowledgeBase
{
    private readonly RagPipeline _pipeline;
    private readonly HeedResilience? _resilience;

    /// <summary>Searches and ingests through <paramref name="pipeline"/> (not disposed here).</summary>
    /// <param name="pipeline">The RAG pipeline.</param>
    /// <param name="resilience">Retries store I/O; null: no retries.</param>
    public RagKnowledgeBase(RagPipeline pipeline, HeedResilience? resilience = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        _resilience = resilience;
    }

    /// <summary>The pipeline underneath (for AskAsync and the index's files).</summary>
    public RagPipeline Pipeline => _pipeline;

    /// <inheritdoc />
    public async Task<IReadOnlyList<KnowledgeBaseHit>> SearchAsync(string query, int topK = 5, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<SearchHit> hits = await _pipeline.SearchAsync(query, topK, cancellationToken).ConfigureAwait(false);
        return hits.Select(h => new KnowledgeBaseHit(h.Chunk.Text, h.SourcePath, h.Score)).ToArray();
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">A path is a file: the index is kept in step with whole folders.</exception>
    public async Task<IngestSummary> IngestAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        foreach (string path in paths)
        {
            if (File.Exists(path))
            {
                throw new ArgumentException(
                    $"'{path}' is a file; the knowledge base indexes whole folders (every .txt, .md and .html file inside). Pass the folder that holds it.",
                    nameof(paths));
            }
        }
        int documents = 0, chunks = 0;
        var lines = new List<string>();
        foreach (string folder in paths)
        {
            IngestResult result = _resilience is null
                ? await _pipeline.IngestAsync(folder, null, cancellationToken).ConfigureAwait(false)
                : await _resilience.ExecuteStoreAsync(async token => await _pipeline.IngestAsync(folder, null, token).ConfigureAwait(false),
                    cancellationToken).ConfigureAwait(false);
            documents += result.FilesFound;
            chunks += result.ChunksAdded;
            lines.Add(result.Summary);
        }
        return new IngestSummary(documents, chunks, string.Join(Environment.NewLine, lines));
    }
}
