namespace Heed.Hosting;

/// <summary>Settings of <see cref="HeedServiceCollectionExtensions.AddHeed"/>; checked when the host starts.</summary>
public sealed class HeedOptions
{
    /// <summary>The GGUF model file (required).</summary>
    public string ModelPath { get; set; } = "";

    /// <summary>Layers on the GPU: -1 all (none without a GPU), 0 none.</summary>
    public int GpuLayers { get; set; } = -1;

    /// <summary>Tokens per context (prompt and answer); 0 takes the model's trained length.</summary>
    public int ContextSize { get; set; } = 2048;

    /// <summary>Contexts per pool: requests served at once (the chat and the embedding pool and the rerankers each have this many).</summary>
    public int PoolSize { get; set; } = 2;

    /// <summary>CPU threads per context; 0 uses every core.</summary>
    public int Threads { get; set; }

    /// <summary>Requests that may wait for a context; more are rejected at once.</summary>
    public int MaxQueuedRequests { get; set; } = 1000;

    /// <summary>Longest one request may take, waiting for a context included.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Load a second, CPU-only copy of the model and use it when the GPU fails or runs out of memory.</summary>
    public bool CpuFallback { get; set; } = true;

    /// <summary>Folders ingest_documents (and ask_long_document with a path) may read; nothing else is read.</summary>
    public IList<string> AllowedRoots { get; set; } = [];

    /// <summary>Where the knowledge base keeps its index; null keeps it in memory. Ignored when <see cref="KnowledgeStore"/> is set.</summary>
    public string? IndexPath { get; set; }

    /// <summary>
    /// Opens another store for the knowledge base (e.g. <c>UsePostgres(connectionString)</c> from Heed.Storage.Postgres);
    /// null: the embedded index (<see cref="IndexPath"/>). Called once, on first use, with the logger factory.
    /// </summary>
    public Func<Microsoft.Extensions.Logging.ILoggerFactory, CancellationToken, Task<Heed.Storage.IKnowledgeStore>>? KnowledgeStore { get; set; }

    /// <summary>A llama.cpp chat template name ("chatml", "llama3", ...) for models without a usable template.</summary>
    public string? FallbackChatTemplate { get; set; }

    /// <summary>Most tokens per chat answer when the request does not say.</summary>
    public int DefaultMaxOutputTokens { get; set; } = 512;

    /// <summary>Retries of store I/O that failed with a transient IOException.</summary>
    public int StoreRetryCount { get; set; } = 3;

    /// <summary>Delay before the first store retry; it doubles for each next one.</summary>
    public TimeSpan StoreRetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Load the model while the host starts (errors show at once) instead of on the first request.</summary>
    public bool LoadModelOnStart { get; set; } = true;

    internal HeedResilienceOptions ToResilienceOptions() => new()
    {
        RequestTimeout = RequestTimeout,
        MaxConcurrentRequests = PoolSize,
        MaxQueuedRequests = MaxQueuedRequests,
        StoreRetryCount = StoreRetryCount,
        StoreRetryDelay = StoreRetryDelay,
    };
}
