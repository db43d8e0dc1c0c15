namespace Heed.Llama;

/// <summary>How a context is created. Defaults suit retrieval: flash attention on where supported.</summary>
public sealed record LlamaContextOptions
{
    /// <summary>Tokens the KV cache holds; 0 takes the model's trained context length.</summary>
    public int ContextSize { get; init; }

    /// <summary>Most tokens one <see cref="LlamaContext.Evaluate"/> chunk submits (llama.cpp n_batch).</summary>
    public int BatchSize { get; init; } = 512;

    /// <summary>Physical micro-batch (llama.cpp n_ubatch); at most <see cref="BatchSize"/>.</summary>
    public int MicroBatchSize { get; init; } = 512;

    /// <summary>CPU threads; 0 uses every core.</summary>
    public int Threads { get; init; }

    /// <summary>Independent sequences that share the cache.</summary>
    public int SequenceCount { get; init; } = 1;

    /// <summary>
    /// One KV cache shared by all sequences (llama.cpp kv_unified): every sequence may use the whole
    /// <see cref="ContextSize"/>, and copying a sequence shares its cells instead of copying them.
    /// Off: each of the <see cref="SequenceCount"/> sequences gets ContextSize / SequenceCount cells.
    /// </summary>
    public bool UnifiedKvCache { get; init; }

    /// <summary>Flash attention in llama.cpp.</summary>
    public FlashAttentionMode FlashAttention { get; init; } = FlashAttentionMode.Auto;

    /// <summary>Compute embeddings (and logits) for <see cref="LlamaContext.GetEmbeddings"/>.</summary>
    public bool Embeddings { get; init; }

    /// <summary>How token embeddings pool into one per sequence (with <see cref="Embeddings"/>).</summary>
    public EmbeddingPooling Pooling { get; init; } = EmbeddingPooling.Mean;

    /// <summary>Storage type of cached keys.</summary>
    public KvCacheType KeyCacheType { get; init; } = KvCacheType.F16;

    /// <summary>Storage type of cached values (quantized values need flash attention).</summary>
    public KvCacheType ValueCacheType { get; init; } = KvCacheType.F16;

    /// <summary>A ggml eval callback and its user data (attention capture installs one).</summary>
    internal (IntPtr Callback, IntPtr UserData) EvalCallback { get; init; }

    internal void Validate(IInferenceEngine model)
    {
        if (ContextSize < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ContextSize), ContextSize, "ContextSize must be 0 (the model's) or positive.");
        }
        if (BatchSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be positive.");
        }
        if (MicroBatchSize <= 0 || MicroBatchSize > BatchSize)
        {
            throw new ArgumentOutOfRangeException(nameof(MicroBatchSize), MicroBatchSize, $"MicroBatchSize must be in [1, BatchSize={BatchSize}].");
        }
        if (Threads < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "Threads must be 0 (all cores) or positive.");
        }
        if (SequenceCount is <= 0 or > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(SequenceCount), SequenceCount, "SequenceCount must be in [1, 256].");
        }
        if (ContextSize > 0 && ContextSize < 8)
        {
            throw new ArgumentOutOfRangeException(nameof(ContextSize), ContextSize, "ContextSize must be at least 8 tokens.");
        }
        _ = model;
    }
}

/// <summary>llama.cpp's flash attention switch.</summary>
public enum FlashAttentionMode
{
    /// <summary>On where the backend supports it.</summary>
    Auto = -1,
    /// <summary>Off: llama.cpp materializes the softmax (needed to read kq_soft_max tensors).</summary>
    Disabled = 0,
    /// <summary>On.</summary>
    Enabled = 1,
}

/// <summary>Pooling of token embeddings into a sequence embedding.</summary>
public enum EmbeddingPooling
{
    /// <summary>Per token, no pooling.</summary>
    None = 0,
    /// <summary>Mean over the sequence.</summary>
    Mean = 1,
    /// <summary>The first token.</summary>
    Cls = 2,
    /// <summary>The last token.</summary>
    Last = 3,
}

/// <summary>KV cache element types (ggml_type values).</summary>
public enum KvCacheType
{
    /// <summary>32-bit float.</summary>
    F32 = 0,
    /// <summary>16-bit float.</summary>
    F16 = 1,
    /// <summary>8-bit blocks.</summary>
    Q8_0 = 8,
    /// <summary>bfloat16.</summary>
    BF16 = 30,
}
