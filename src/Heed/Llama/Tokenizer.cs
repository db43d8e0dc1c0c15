using System.Text;
using Heed.Interop.Llama;

namespace Heed.Llama;

/// <summary>The model's own tokenizer (llama.cpp's). Thread-safe; lives as long as its model.</summary>
public sealed unsafe class Tokenizer : ITokenizer
{
    private readonly LlamaModel _model;
    private readonly IntPtr _vocab;

    internal Tokenizer(LlamaModel model, IntPtr vocab)
    {
        _model = model;
        _vocab = vocab;
        BeginningOfSequence = LlamaNative.llama_vocab_bos(vocab);
        EndOfSequence = LlamaNative.llama_vocab_eos(vocab);
        AddsBeginningOfSequence = LlamaNative.llama_vocab_get_add_bos(vocab) != 0;
    }

    /// <summary>The BOS token id, or -1.</summary>
    public int BeginningOfSequence { get; }

    /// <summary>The EOS token id, or -1.</summary>
    public int EndOfSequence { get; }

    /// <summary>Whether <see cref="Tokenize"/> with addSpecial prepends BOS.</summary>
    public bool AddsBeginningOfSequence { get; }

    /// <summary>Whether a token ends generation (EOS, EOT and the like).</summary>
    public bool IsEndOfGeneration(int token) => LlamaNative.llama_vocab_is_eog(Vocab, token) != 0;

    /// <summary>Text to token ids.</summary>
    /// <param name="text">Any text; an empty string gives no tokens (or just BOS).</param>
    /// <param name="addSpecial">Add BOS/EOS as the model's vocabulary asks.</param>
    /// <param name="parseSpecial">Read special-token text (e.g. "&lt;|eos|&gt;") as the special token.</param>
    public int[] Tokenize(string text, bool addSpecial = true, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        int capacity = utf8.Length + 8;
        for (int attempt = 0; attempt < 2; attempt++)
        {
            int[] tokens = new int[capacity];
            int n;
            fixed (byte* t = utf8)
            fixed (int* o = tokens)
            {
                n = LlamaNative.llama_tokenize(Vocab, t, utf8.Length, o, capacity, addSpecial, parseSpecial);
            }
            if (n >= 0)
            {
                return tokens.AsSpan(0, n).ToArray();
            }
            if (n == int.MinValue)
            {
                throw new HeedNativeException($"llama.cpp could not tokenize a text of {utf8.Length} bytes (too long for int32 token counts).");
            }
            capacity = -n;
        }
        throw new HeedNativeException("llama.cpp kept asking for a larger token buffer.");
    }

    /// <summary>The number of tokens a text takes (without BOS/EOS).</summary>
    public int CountTokens(string text) => Tokenize(text, addSpecial: false).Length;

    /// <summary>Token ids to text.</summary>
    public string Detokenize(ReadOnlySpan<int> tokens, bool removeSpecial = false, bool unparseSpecial = false)
    {
        if (tokens.IsEmpty)
        {
            return "";
        }
        ValidateTokens(tokens);
        int capacity = tokens.Length * 8 + 16;
        for (int attempt = 0; attempt < 2; attempt++)
        {
            byte[] buffer = new byte[capacity];
            int n;
            fixed (int* t = tokens)
            fixed (byte* b = buffer)
            {
                n = LlamaNative.llama_detokenize(Vocab, t, tokens.Length, b, capacity, removeSpecial, unparseSpecial);
            }
            if (n >= 0)
            {
                return Encoding.UTF8.GetString(buffer, 0, n);
            }
            capacity = -n;
        }
        throw new HeedNativeException("llama.cpp kept asking for a larger text buffer.");
    }

    /// <summary>The bytes one token stands for (may be part of a multi-byte UTF-8 character).</summary>
    public byte[] TokenToBytes(int token, bool renderSpecial = false)
    {
        ValidateToken(token);
        Span<byte> buffer = stackalloc byte[64];
        int n;
        fixed (byte* b = buffer)
        {
            n = LlamaNative.llama_token_to_piece(Vocab, token, b, buffer.Length, 0, renderSpecial);
        }
        if (n >= 0)
        {
            return buffer[..n].ToArray();
        }
        byte[] large = new byte[-n];
        fixed (byte* b = large)
        {
            n = LlamaNative.llama_token_to_piece(Vocab, token, b, large.Length, 0, renderSpecial);
        }
        return large.AsSpan(0, Math.Max(n, 0)).ToArray();
    }

    /// <summary>One token as text (invalid partial UTF-8 shows as U+FFFD; streaming uses a decoder instead).</summary>
    public string TokenToString(int token) => Encoding.UTF8.GetString(TokenToBytes(token));

    internal void ValidateTokens(ReadOnlySpan<int> tokens)
    {
        foreach (int token in tokens)
        {
            ValidateToken(token);
        }
    }

    private void ValidateToken(int token)
    {
        if ((uint)token >= (uint)_model.VocabularySize)
        {
            throw new ArgumentOutOfRangeException(nameof(token), token, $"Token ids must be in [0, {_model.VocabularySize}).");
        }
    }

    /// <summary>The llama_vocab pointer, for samplers that read the vocabulary (grammar).</summary>
    internal IntPtr VocabularyPointer => Vocab;

    private IntPtr Vocab
    {
        get
        {
            _ = _model.Handle; // throws ObjectDisposedException once the model is gone
            return _vocab;
        }
    }
}
