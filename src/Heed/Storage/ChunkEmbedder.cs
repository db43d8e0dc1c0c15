using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace Heed.Storage;

/// <summary>
/// Gives chunks their embeddings in batches: those without a vector, all of them when the index was embedded by
/// another model, and any whose size differs from the generator's. Replaces list entries, never changes a stored chunk
/// (a snapshot that queries may be reading shares them).
/// </summary>
internal sealed class ChunkEmbedder(ChunkEmbeddings embeddings, ILogger logger)
{
    public string ModelId => embeddings.ModelId;

    /// <summary>Embeds what needs it.</summary>
    public async Task EmbedMissingAsync(List<IndexedChunk> chunks, string? storedModel, CancellationToken cancellationToken)
    {
        if (storedModel is not null && storedModel != ModelId)
        {
            // vectors of another model are not comparable with this one's: embed everything again
            logger.LogInformation("The index was embedded with {Stored}; re-embedding every chunk with {Model}.", storedModel, ModelId);
            for (int i = 0; i < chunks.Count; i++)
            {
                chunks[i] = chunks[i] with { Vector = null };
            }
        }
        int? dimensions = null;
        for (int pass = 0; pass < 2; pass++)
        {
            List<int> todo = Enumerable.Range(0, chunks.Count)
                .Where(i => chunks[i].Vector is null || (dimensions is int d && chunks[i].Vector!.Length != d)).ToList();
            for (int start = 0; start < todo.Count; start += embeddings.BatchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                List<int> batch = todo.Skip(start).Take(embeddings.BatchSize).ToList();
                GeneratedEmbeddings<Embedding<float>> generated = await embeddings.Generator.GenerateAsync(
                    batch.Select(i => chunks[i].Chunk.Text), cancellationToken: cancellationToken).ConfigureAwait(false);
                if (generated.Count != batch.Count)
                {
                    throw new InvalidOperationException($"The embedding generator returned {generated.Count} vectors for {batch.Count} texts; it must return one per text.");
                }
                for (int j = 0; j < batch.Count; j++)
                {
                    float[] vector = generated[j].Vector.ToArray();
                    dimensions ??= vector.Length;
                    if (vector.Length != dimensions)
                    {
                        throw new InvalidOperationException($"The embedding generator returned vectors of {dimensions} and {vector.Length} dimensions; they must all have one size.");
                    }
                    chunks[batch[j]] = chunks[batch[j]] with { Vector = vector };
                }
            }
            if (dimensions is null)
            {
                // nothing new to embed: learn the size from the stored vectors, then re-embed any of another size
                dimensions = chunks.FirstOrDefault(c => c.Vector is not null)?.Vector!.Length;
                if (dimensions is null)
                {
                    break;
                }
            }
        }
    }
}
