namespace Heed.Attention;

/// <summary>
/// The sizes of one flash or block-sparse attention call. Queries and the output are
/// [Batch, Heads, QueryLength, HeadDim]; keys and values [Batch, KvHeads, KeyLength, HeadDim], row-major.
/// </summary>
/// <param name="Batch">Sequences in the batch.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads; <paramref name="Heads"/> must be a multiple (grouped-query attention).</param>
/// <param name="QueryLength">Query rows per sequence.</param>
/// <param name="KeyLength">Keys per sequence.</param>
/// <param name="HeadDim">Head size.</param>
public readonly record struct AttentionShape(int Batch, int Heads, int KvHeads, int QueryLength, int KeyLength, int HeadDim)
{
    /// <summary>Elements of the query (and output) tensor.</summary>
    public long QueryElements => (long)Batch * Heads * QueryLength * HeadDim;

    /// <summary>Elements of the key (and value) tensor.</summary>
    public long KeyElements => (long)Batch * KvHeads * KeyLength * HeadDim;

    /// <summary>Query rows over all sequences and heads: the length of the log-sum-exp output.</summary>
    public long RowCount => (long)Batch * Heads * QueryLength;

    /// <summary>The number of blocks of <paramref name="blockSize"/> that cover <paramref name="length"/> rows.</summary>
    public static int BlockCount(int length, int blockSize) => (length + blockSize - 1) / blockSize;

    /// <summary>Elements of a block mask [Batch, Heads, query blocks, key blocks].</summary>
    public long MaskElements(int blockSize) =>
        (long)Batch * Heads * BlockCount(QueryLength, blockSize) * BlockCount(KeyLength, blockSize);

    internal void Validate(string paramName)
    {
        if (Batch < 1 || Heads < 1 || KvHeads < 1 || QueryLength < 1 || KeyLength < 1 || HeadDim < 1)
        {
            throw new ArgumentException($"Every size of the attention shape must be at least 1, got {this}.", paramName);
        }
        if (Heads % KvHeads != 0)
        {
            throw new ArgumentException(
                $"Heads ({Heads}) must be a multiple of KvHeads ({KvHeads}): each key/value head serves Heads/KvHeads query heads.", paramName);
        }
    }
}
