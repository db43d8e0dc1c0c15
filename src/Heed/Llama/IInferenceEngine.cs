namespace Heed.Llama;

/// <summary>
/// A loaded model as Heed's retrieval features (ICR, InfiniRetri) use it: facts from its GGUF,
/// its tokenizer, and contexts whose decodes an <see cref="Attention.AttentionCapture"/> watches.
/// Two implementations: <see cref="LlamaModel"/> (Heed's own llama.cpp binding, the default) and
/// Heed.LLamaSharp's engine over a model that LLamaSharp loaded.
/// </summary>
public interface IInferenceEngine
{
    /// <summary>GGUF general.architecture, e.g. "llama".</summary>
    string Architecture { get; }

    /// <summary>Transformer blocks.</summary>
    int LayerCount { get; }

    /// <summary>The context length the model was trained with.</summary>
    int TrainedContextLength { get; }

    /// <summary>The model's tokenizer.</summary>
    ITokenizer Tokenizer { get; }

    /// <summary>A GGUF metadata value as text, or null when absent.</summary>
    string? GetMetadata(string key);

    /// <summary>
    /// The ggml-base library whose tensors this engine's contexts compute, by file name or soname
    /// as loaded in this process (e.g. "libggml-base.so"); null for Heed's own. The capture reads
    /// tensors with that library's functions.
    /// </summary>
    string? GgmlLibrary { get; }

    /// <summary>
    /// A context with <see cref="LlamaContextOptions.SequenceCount"/> sequences (one by default). Sizes, threads, flash attention and cache types come from
    /// <paramref name="options"/>; its <see cref="LlamaContextOptions.EvalCallback"/> is installed as llama.cpp's cb_eval.
    /// </summary>
    IInferenceContext CreateContext(LlamaContextOptions options);
}

/// <summary>One sequence's KV cache over an <see cref="IInferenceEngine"/>: decode, remove, generate.</summary>
public interface IInferenceContext : IDisposable
{
    /// <summary>Tokens the KV cache holds.</summary>
    int ContextSize { get; }

    /// <summary>The position the next token takes (0 when empty).</summary>
    int NextPosition();

    /// <summary>Decodes tokens at the end of the sequence (the eval callback sees every ubatch).</summary>
    void Evaluate(ReadOnlySpan<int> tokens, CancellationToken cancellationToken);

    /// <summary>Removes positions [start, end) from the cache (end -1: to the end).</summary>
    void RemoveTokens(int start, int end);

    /// <summary>Empties the cache (every sequence).</summary>
    void Clear();

    // Sequence operations (block ICR): sequence ids are in [0, SequenceCount); the calls above work on sequence 0.

    /// <summary>Independent sequences the cache holds (<see cref="LlamaContextOptions.SequenceCount"/>).</summary>
    int SequenceCount { get; }

    /// <summary>The position the next token of a sequence takes (0 when it is empty).</summary>
    int NextPosition(int sequence);

    /// <summary>Decodes tokens into a sequence from <paramref name="position"/> on (at or after its next position).</summary>
    void EvaluateAt(ReadOnlySpan<int> tokens, int sequence, int position, CancellationToken cancellationToken);

    /// <summary>Removes positions [start, end) of a sequence (end -1: to the end).</summary>
    void RemoveTokens(int sequence, int start, int end);

    /// <summary>Makes positions [start, end) of <paramref name="source"/> also belong to <paramref name="destination"/> (end -1: to the end).</summary>
    void CopySequence(int source, int destination, int start, int end);

    /// <summary>Adds <paramref name="delta"/> to positions [start, end) of a sequence; llama.cpp re-rotates their keys (K-shift) before the next decode.</summary>
    void ShiftPositions(int sequence, int start, int end, int delta);

    /// <summary>One sequence's cache (its cells' positions, keys and values) as bytes.</summary>
    byte[] SaveSequenceState(int sequence);

    /// <summary>Replaces a sequence's cache with bytes from <see cref="SaveSequenceState"/> of a context over the same model.</summary>
    void LoadSequenceState(byte[] state, int sequence);

    /// <summary>Streams the continuation of a prompt from an empty cache (see <see cref="LlamaContext.GenerateAsync"/>).</summary>
    IAsyncEnumerable<string> GenerateAsync(string prompt, GenerationOptions? options, CancellationToken cancellationToken);

    /// <summary>
    /// Streams the token ids that continue a tokenized prompt, from an empty cache, sampled as
    /// <paramref name="options"/> say (grammar included); ends before the end-of-generation token
    /// or at MaxTokens (see <see cref="LlamaContext.GenerateTokensAsync"/>). Chat runs on this.
    /// </summary>
    IAsyncEnumerable<int> GenerateTokensAsync(int[] promptTokens, GenerationOptions? options, CancellationToken cancellationToken);
}

/// <summary>Text to token ids, as the retrieval features need it.</summary>
public interface ITokenizer
{
    /// <summary>The beginning-of-sequence token.</summary>
    int BeginningOfSequence { get; }

    /// <summary>Whether the model wants BOS in front of a prompt.</summary>
    bool AddsBeginningOfSequence { get; }

    /// <summary>Token ids of a text; <paramref name="addSpecial"/> adds BOS where the model wants it.</summary>
    int[] Tokenize(string text, bool addSpecial = true, bool parseSpecial = false);

    /// <summary>The bytes one token stands for; <paramref name="renderSpecial"/> writes control tokens' text too.</summary>
    byte[] TokenToBytes(int token, bool renderSpecial = false);
}
