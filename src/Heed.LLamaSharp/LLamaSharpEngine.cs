using Heed.Llama;
using LLama;
using LLama.Exceptions;
using LLama.Native;

namespace Heed.LLamaSharp;

/// <summary>
/// Heed's retrieval features over a model that LLamaSharp loaded: pass this engine where
/// <see cref="Heed.Ranking.InContextReranker"/> or <see cref="Heed.Retrieval.InfiniteRetriever"/>
/// take a model. Contexts are created through LLamaSharp with libheed's attention capture as
/// their cb_eval; the capture reads tensors with the ggml LLamaSharp loaded, after checking that
/// its tensor layout is the one libheed was built for.
/// </summary>
public sealed class LLamaSharpEngine : IInferenceEngine
{
    // LLamaSharp's ggml-base, found by its soname among the loaded libraries (Heed's own is libheed-ggml-base.so).
    private const string LLamaSharpGgmlLibrary = "libggml-base.so";

    private readonly LLamaWeights _weights;
    private readonly LLamaSharpTokenizer _tokenizer;

    /// <summary>An engine over <paramref name="weights"/>, which the caller keeps and disposes after the engine's users.</summary>
    /// <exception cref="PlatformNotSupportedException">Not on Linux (the capture finds LLamaSharp's ggml with dlopen).</exception>
    public LLamaSharpEngine(LLamaWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("Heed.LLamaSharp runs on Linux: Heed's native libraries are built for linux-x64.");
        }
        _weights = weights;
        _tokenizer = new LLamaSharpTokenizer(weights);
        Architecture = GetMetadata("general.architecture") ?? "";
        LayerCount = weights.NativeHandle.LayerCount;
    }

    /// <summary>The LLamaSharp model.</summary>
    public LLamaWeights Weights => _weights;

    /// <inheritdoc />
    public string Architecture { get; }

    /// <inheritdoc />
    public int LayerCount { get; }

    /// <inheritdoc />
    public int TrainedContextLength => _weights.ContextSize;

    /// <inheritdoc />
    public ITokenizer Tokenizer => _tokenizer;

    /// <inheritdoc />
    public string? GgmlLibrary => LLamaSharpGgmlLibrary;

    /// <inheritdoc />
    public string? GetMetadata(string key) => _weights.Metadata.TryGetValue(key, out string? value) ? value : null;

    /// <inheritdoc />
    public IInferenceContext CreateContext(LlamaContextOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(this);
        if (options.Embeddings)
        {
            throw new ArgumentException("A LLamaSharp engine context has no embeddings output.", nameof(options));
        }
        LLamaContextParams p = LLamaContextParams.Default();
        p.n_ctx = (uint)(options.ContextSize > 0 ? options.ContextSize : TrainedContextLength);
        p.n_batch = (uint)options.BatchSize;
        p.n_ubatch = (uint)options.MicroBatchSize;
        p.n_seq_max = (uint)options.SequenceCount;
        p.kv_unified = options.UnifiedKvCache;
        p.n_threads = p.n_threads_batch = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        p.llama_flash_attn_type = (LLamaFlashAttentionType)(int)options.FlashAttention;
        p.type_k = (GGMLType)(int)options.KeyCacheType;
        p.type_v = (GGMLType)(int)options.ValueCacheType;
        p.cb_eval = options.EvalCallback.Callback;
        p.cb_eval_user_data = options.EvalCallback.UserData;
        SafeLLamaContextHandle handle;
        try
        {
            handle = SafeLLamaContextHandle.Create(_weights.NativeHandle, p);
        }
        catch (RuntimeError e)
        {
            throw new HeedNativeException($"LLamaSharp could not create a context of {p.n_ctx} tokens: {e.Message}. Try a smaller ContextSize.", inner: e);
        }
        return new LLamaSharpContext(handle, _tokenizer, options.SequenceCount);
    }
}
