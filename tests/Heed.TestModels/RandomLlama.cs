namespace Heed.TestModels;

/// <summary>
/// A Llama-architecture GGUF of a real model's shape with deterministic random f16 weights (norms f32), for
/// speed measurements where the per-layer cost must be that of a real model (its outputs are
/// noise). The tokenizer is <see cref="TinyLlama"/>'s byte-level BPE, padded with reserved control
/// tokens to the shape's vocabulary. Weights are made while the file is written, so a model of
/// gigabytes takes seconds and little memory.
/// </summary>
public static class RandomLlama
{
    /// <summary>The sizes of a model.</summary>
    public sealed record Shape(int Layers, int Embedding, int Heads, int KvHeads, int FeedForward, int Vocabulary, int ContextLength)
    {
        public int HeadSize => Embedding / Heads;
    }

    /// <summary>A 1B-class Llama (Llama 3.2 1B's layers, width, heads and FFN; a 32K vocabulary): about 1.1B parameters, 2.2 GB.</summary>
    public static Shape OneB { get; } = new(Layers: 16, Embedding: 2048, Heads: 32, KvHeads: 8, FeedForward: 8192, Vocabulary: 32000, ContextLength: 4096);

    public static void Write(string path, Shape shape, ulong seed = 1234)
    {
        if (shape.Embedding % shape.Heads != 0 || shape.Heads % shape.KvHeads != 0 || shape.Vocabulary < TinyLlama.VocabularySize)
        {
            throw new ArgumentException($"not a Llama shape: {shape}", nameof(shape));
        }
        var tokens = new List<string>(TinyLlama.Bpe.Tokens) { "<|bos|>", "<|eos|>" };
        var types = Enumerable.Repeat(1, TinyLlama.Bpe.Tokens.Count).Concat([3, 3]).ToList(); // normal, control
        for (int i = tokens.Count; i < shape.Vocabulary; i++)
        {
            tokens.Add($"<|reserved_{i}|>");
            types.Add(3);
        }
        const string a = "llama";
        var gguf = new GgufWriter()
            .Add("general.architecture", a)
            .Add("general.name", "heed-random-llama")
            .Add($"{a}.context_length", (uint)shape.ContextLength)
            .Add($"{a}.embedding_length", (uint)shape.Embedding)
            .Add($"{a}.block_count", (uint)shape.Layers)
            .Add($"{a}.feed_forward_length", (uint)shape.FeedForward)
            .Add($"{a}.attention.head_count", (uint)shape.Heads)
            .Add($"{a}.attention.head_count_kv", (uint)shape.KvHeads)
            .Add($"{a}.rope.dimension_count", (uint)shape.HeadSize)
            .Add($"{a}.rope.freq_base", 500000f)
            .Add($"{a}.attention.layer_norm_rms_epsilon", 1e-5f)
            .Add($"{a}.vocab_size", (uint)shape.Vocabulary)
            .Add("tokenizer.ggml.model", "gpt2")
            .Add("tokenizer.ggml.pre", "gpt-2")
            .Add("tokenizer.ggml.tokens", tokens)
            .Add("tokenizer.ggml.token_type", types)
            .Add("tokenizer.ggml.merges", TinyLlama.Bpe.Merges)
            .Add("tokenizer.ggml.bos_token_id", (uint)TinyLlama.Bos)
            .Add("tokenizer.ggml.eos_token_id", (uint)TinyLlama.Eos)
            .Add("tokenizer.ggml.add_bos_token", true);

        int d = shape.Embedding, kv = shape.KvHeads * shape.HeadSize, ff = shape.FeedForward, vocab = shape.Vocabulary;
        ulong stream = 0;
        // Each matrix gets its own stream of the generator; values uniform with the spread of the
        // usual 1/sqrt(fan-in) initialisation, so activations stay in f16's range.
        void Matrix(string name, int fanIn, int fanOut) =>
            gguf.AddHalfTensor(name, [fanIn, fanOut], Uniform(seed, ++stream, MathF.Sqrt(3f / fanIn)));
        // Norm weights stay f32, as in real GGUFs (ggml multiplies f32 activations by f32 weights only).
        void Ones(string name, int n) => gguf.AddTensor(name, [n], Enumerable.Repeat(1f, n).ToArray());

        Matrix("token_embd.weight", d, vocab);
        for (int layer = 0; layer < shape.Layers; layer++)
        {
            string p = $"blk.{layer}.";
            Ones(p + "attn_norm.weight", d);
            Matrix(p + "attn_q.weight", d, d);
            Matrix(p + "attn_k.weight", d, kv);
            Matrix(p + "attn_v.weight", d, kv);
            Matrix(p + "attn_output.weight", d, d);
            Ones(p + "ffn_norm.weight", d);
            Matrix(p + "ffn_gate.weight", d, ff);
            Matrix(p + "ffn_up.weight", d, ff);
            Matrix(p + "ffn_down.weight", ff, d);
        }
        Ones("output_norm.weight", d);
        Matrix("output.weight", d, vocab);
        gguf.Write(path);
    }

    // Element i of stream s: SplitMix64 of (seed, s, i), mapped to [-limit, limit). Any element is
    // computed on its own, so blocks can be made in parallel and the file is the same every time.
    private static Func<long, float> Uniform(ulong seed, ulong stream, float limit) => i =>
    {
        ulong z = seed * 0x9E3779B97F4A7C15UL + stream * 0xD1B54A32D192ED03UL + (ulong)i * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return ((z >> 40) * (1f / (1 << 24)) * 2f - 1f) * limit;
    };
}
