using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Heed.Interop.Llama;

namespace Heed.Llama;

/// <summary>
/// A GGUF model loaded by llama.cpp. Immutable once loaded and safe to share between threads;
/// each <see cref="LlamaContext"/> made from it is used by one caller at a time.
/// </summary>
public sealed unsafe class LlamaModel : IInferenceEngine, IDisposable
{
    private readonly SafeLlamaModelHandle _handle;
    private readonly Dictionary<string, string> _metadata;
    private volatile bool _disposed;

    private LlamaModel(SafeLlamaModelHandle handle, string path)
    {
        _handle = handle;
        Path = path;
        IntPtr vocab = LlamaNative.llama_model_get_vocab(handle);
        Tokenizer = new Tokenizer(this, vocab);
        _metadata = ReadMetadata(handle);
        Architecture = _metadata.GetValueOrDefault("general.architecture", "unknown");
        LayerCount = LlamaNative.llama_model_n_layer(handle);
        HeadCount = LlamaNative.llama_model_n_head(handle);
        KvHeadCount = LlamaNative.llama_model_n_head_kv(handle);
        EmbeddingSize = LlamaNative.llama_model_n_embd(handle);
        TrainedContextLength = LlamaNative.llama_model_n_ctx_train(handle);
        VocabularySize = LlamaNative.llama_vocab_n_tokens(vocab);
        ParameterCount = LlamaNative.llama_model_n_params(handle);
        SizeInBytes = LlamaNative.llama_model_size(handle);
        IntPtr template = LlamaNative.llama_model_chat_template(handle, null);
        ChatTemplate = template == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(template);
        byte* buffer = stackalloc byte[256];
        int n = LlamaNative.llama_model_desc(handle, buffer, 256);
        Description = n > 0 ? Encoding.UTF8.GetString(buffer, Math.Min(n, 255)) : Architecture;
    }

    /// <summary>Loads a GGUF model on a worker thread.</summary>
    /// <param name="path">The .gguf file.</param>
    /// <param name="options">Load options; null for the defaults.</param>
    /// <param name="progress">Receives the load progress from 0 to 1.</param>
    /// <param name="cancellationToken">Stops the load; the partly loaded model is freed.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ArgumentException">The path is empty or a directory.</exception>
    /// <exception cref="HeedModelFormatException">The file is not a GGUF model llama.cpp accepts.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static Task<LlamaModel> LoadAsync(string path, LlamaModelOptions? options = null,
        IProgress<float>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new LlamaModelOptions();
        options.Validate();
        GgufFile.Validate(path);
        cancellationToken.ThrowIfCancellationRequested();
        string fullPath = System.IO.Path.GetFullPath(path);
        return Task.Run(() => Load(fullPath, options, progress, cancellationToken), cancellationToken);
    }

    /// <summary>Loads a GGUF model on the calling thread. See <see cref="LoadAsync"/>.</summary>
    public static LlamaModel Load(string path, LlamaModelOptions? options = null)
    {
        options ??= new LlamaModelOptions();
        options.Validate();
        GgufFile.Validate(path);
        return Load(System.IO.Path.GetFullPath(path), options, null, CancellationToken.None);
    }

    private static LlamaModel Load(string path, LlamaModelOptions options, IProgress<float>? progress, CancellationToken cancellationToken)
    {
        LlamaBackend.EnsureInitialized();
        var state = new LoadState(progress, cancellationToken);
        GCHandle stateHandle = GCHandle.Alloc(state);
        try
        {
            LlamaModelParams parameters = LlamaNative.llama_model_default_params();
            parameters.n_gpu_layers = options.GpuLayers;
            parameters.load_mode = options.UseMemoryMap ? 1 : 0;
            parameters.vocab_only = options.VocabularyOnly;
            parameters.progress_callback = &OnProgress;
            parameters.progress_callback_user_data = GCHandle.ToIntPtr(stateHandle);
            SafeLlamaModelHandle handle = LlamaBackend.CaptureErrors(
                () => LlamaNative.llama_model_load_from_file(path, parameters), out IReadOnlyList<string> errors);
            if (handle.IsInvalid)
            {
                handle.Dispose();
                cancellationToken.ThrowIfCancellationRequested();
                string reason = errors.Count > 0 ? string.Join(" ", errors) : "llama.cpp could not load it";
                throw new HeedModelFormatException(path, reason);
            }
            progress?.Report(1f);
            return new LlamaModel(handle, path);
        }
        finally
        {
            stateHandle.Free();
        }
    }

    private sealed record LoadState(IProgress<float>? Progress, CancellationToken CancellationToken);

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte OnProgress(float value, IntPtr userData)
    {
        try
        {
            var state = (LoadState)GCHandle.FromIntPtr(userData).Target!;
            state.Progress?.Report(value);
            return state.CancellationToken.IsCancellationRequested ? (byte)0 : (byte)1;
        }
        catch
        {
            return 0;
        }
    }

    /// <summary>The file it was loaded from.</summary>
    public string Path { get; }

    /// <summary>GGUF general.architecture, e.g. "llama".</summary>
    public string Architecture { get; }

    /// <summary>llama.cpp's one-line description (architecture, size, quantization).</summary>
    public string Description { get; }

    /// <summary>Transformer blocks.</summary>
    public int LayerCount { get; }

    /// <summary>Query heads per layer.</summary>
    public int HeadCount { get; }

    /// <summary>Key/value heads per layer (fewer than <see cref="HeadCount"/> with GQA).</summary>
    public int KvHeadCount { get; }

    /// <summary>Hidden size.</summary>
    public int EmbeddingSize { get; }

    /// <summary>The context length the model was trained with.</summary>
    public int TrainedContextLength { get; }

    /// <summary>Tokens in the vocabulary.</summary>
    public int VocabularySize { get; }

    /// <summary>Total parameters.</summary>
    public ulong ParameterCount { get; }

    /// <summary>Bytes of weights.</summary>
    public ulong SizeInBytes { get; }

    /// <summary>The GGUF chat template (Jinja), or null when the model has none.</summary>
    public string? ChatTemplate { get; }

    /// <summary>The model's tokenizer.</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>Every GGUF metadata entry as llama.cpp renders it (arrays are summarized).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    /// <summary>One GGUF metadata value by key, or null.</summary>
    public string? GetMetadata(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return _metadata.GetValueOrDefault(key);
    }

    /// <summary>Creates an inference context over this model.</summary>
    public LlamaContext CreateContext(LlamaContextOptions? options = null) => new(this, options ?? new LlamaContextOptions());

    ITokenizer IInferenceEngine.Tokenizer => Tokenizer;

    string? IInferenceEngine.GgmlLibrary => null;

    IInferenceContext IInferenceEngine.CreateContext(LlamaContextOptions options) => CreateContext(options);

    internal SafeLlamaModelHandle Handle
    {
        get
        {
            // Contexts hold references on the handle, so it stays open after Dispose: track it here.
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _handle;
        }
    }

    /// <summary>Frees the weights once the last context made from the model is disposed too.</summary>
    public void Dispose()
    {
        _disposed = true;
        _handle.Dispose();
    }

    private static Dictionary<string, string> ReadMetadata(SafeLlamaModelHandle handle)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        int count = LlamaNative.llama_model_meta_count(handle);
        for (int i = 0; i < count; i++)
        {
            string? key = ReadString((b, n) => LlamaNative.llama_model_meta_key_by_index(handle, i, b, n));
            string? value = ReadString((b, n) => LlamaNative.llama_model_meta_val_str_by_index(handle, i, b, n));
            if (key is not null && value is not null)
            {
                metadata[key] = value;
            }
        }
        return metadata;
    }

    private delegate int StringReader(byte* buffer, nuint size);

    // llama.cpp returns the full length even when the buffer is short: retry once with that size.
    private static string? ReadString(StringReader read)
    {
        byte[] buffer = new byte[256];
        for (int attempt = 0; attempt < 2; attempt++)
        {
            int n;
            fixed (byte* p = buffer)
            {
                n = read(p, (nuint)buffer.Length);
            }
            if (n < 0)
            {
                return null;
            }
            if (n < buffer.Length)
            {
                return Encoding.UTF8.GetString(buffer, 0, n);
            }
            buffer = new byte[n + 1];
        }
        return null;
    }
}
