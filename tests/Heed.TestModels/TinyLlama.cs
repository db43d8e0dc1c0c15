namespace Heed.TestModels;

/// <summary>
/// Writes a tiny Llama-family GGUF with random weights and a working byte-level BPE tokenizer:
/// 2 layers, 4 query heads and 2 KV heads (GQA) of size 16, context 512. Deterministic for a
/// given seed, so every test sees the same model. Besides plain Llama it writes the variants that
/// attention capture claims to support, each with the part that sets it apart: qwen2 (biases on
/// Q, K and V), qwen3 (RMS norms on Q and K), mistral3, and granite (its own attention scale,
/// plus embedding, residual and logit scales).
/// </summary>
public static class TinyLlama
{
    public const int EmbeddingSize = 64;
    public const int Layers = 2;
    public const int Heads = 4;
    public const int KvHeads = 2;
    public const int HeadSize = EmbeddingSize / Heads;
    public const int FeedForward = 128;
    public const int ContextLength = 512;

    public const string Corpus =
        "the pass key is hidden in the text . remember the pass key . what is the pass key ? " +
        "the quick brown fox jumps over the lazy dog . a model reads the documents and the query . " +
        "attention finds the answer in the context . the answer is in the document about the key . " +
        "retrieval with attention ranks the documents by the mass the query gives them .";

    public static int VocabularySize => Bpe.Tokens.Count + 2;

    public static int Bos => Bpe.Tokens.Count;

    public static int Eos => Bpe.Tokens.Count + 1;

    public static ByteLevelBpe Bpe { get; } = ByteLevelBpe.Train(Corpus, mergeCount: 120);

    /// <summary>The architectures <see cref="Write"/> can write, as GGUF names them.</summary>
    public static IReadOnlyList<string> Architectures { get; } = ["llama", "qwen2", "qwen3", "mistral3", "granite"];

    /// <summary>Granite's attention scale, written unlike 1/sqrt(head size) so a reader that ignores it is caught.</summary>
    public const float GraniteAttentionScale = 0.2f;

    /// <param name="editTensor">Sees each tensor's name and data before it is written and may change the data (a model built to behave a known way).</param>
    public static void Write(string path, int seed = 1234, string architecture = "llama", Action<GgufWriter>? addMetadata = null,
        Action<string, float[]>? editTensor = null)
    {
        if (!Architectures.Contains(architecture))
        {
            throw new ArgumentException($"unknown architecture {architecture}", nameof(architecture));
        }
        var random = new Random(seed);
        var tokens = new List<string>(Bpe.Tokens) { "<|bos|>", "<|eos|>" };
        var types = Enumerable.Repeat(1, Bpe.Tokens.Count).Concat([3, 3]).ToList(); // normal, control
        int vocab = tokens.Count;

        var gguf = new GgufWriter()
            .Add("general.architecture", architecture)
            .Add("general.name", "heed-tiny-random")
            .Add($"{architecture}.context_length", (uint)ContextLength)
            .Add($"{architecture}.embedding_length", (uint)EmbeddingSize)
            .Add($"{architecture}.block_count", (uint)Layers)
            .Add($"{architecture}.feed_forward_length", (uint)FeedForward)
            .Add($"{architecture}.attention.head_count", (uint)Heads)
            .Add($"{architecture}.attention.head_count_kv", (uint)KvHeads)
            .Add($"{architecture}.rope.dimension_count", (uint)HeadSize)
            .Add($"{architecture}.rope.freq_base", 10000f)
            .Add($"{architecture}.attention.layer_norm_rms_epsilon", 1e-5f)
            .Add($"{architecture}.vocab_size", (uint)vocab)
            .Add("tokenizer.ggml.model", "gpt2")
            .Add("tokenizer.ggml.pre", "gpt-2")
            .Add("tokenizer.ggml.tokens", tokens)
            .Add("tokenizer.ggml.token_type", types)
            .Add("tokenizer.ggml.merges", Bpe.Merges)
            .Add("tokenizer.ggml.bos_token_id", (uint)Bos)
            .Add("tokenizer.ggml.eos_token_id", (uint)Eos)
            .Add("tokenizer.ggml.add_bos_token", true)
            .Add("tokenizer.chat_template",
                "{% for m in messages %}<|bos|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}" +
                "{% if add_generation_prompt %}<|bos|>assistant\n{% endif %}");

        if (architecture == "granite")
        {
            gguf.Add("granite.attention.scale", GraniteAttentionScale)
                .Add("granite.embedding_scale", 1.5f)
                .Add("granite.residual_scale", 0.5f)
                .Add("granite.logit_scale", 2f);
        }

        addMetadata?.Invoke(gguf);

        gguf.AddTensor("token_embd.weight", [EmbeddingSize, vocab], Normal(random, EmbeddingSize * vocab, 0.5f));
        for (int layer = 0; layer < Layers; layer++)
        {
            string p = $"blk.{layer}.";
            int kv = KvHeads * HeadSize;
            gguf.AddTensor(p + "attn_norm.weight", [EmbeddingSize], Ones(EmbeddingSize))
                .AddTensor(p + "attn_q.weight", [EmbeddingSize, EmbeddingSize], Normal(random, EmbeddingSize * EmbeddingSize, 0.2f))
                .AddTensor(p + "attn_k.weight", [EmbeddingSize, kv], Normal(random, EmbeddingSize * kv, 0.2f))
                .AddTensor(p + "attn_v.weight", [EmbeddingSize, kv], Normal(random, EmbeddingSize * kv, 0.2f))
                .AddTensor(p + "attn_output.weight", [EmbeddingSize, EmbeddingSize], Normal(random, EmbeddingSize * EmbeddingSize, 0.1f))
                .AddTensor(p + "ffn_norm.weight", [EmbeddingSize], Ones(EmbeddingSize))
                .AddTensor(p + "ffn_gate.weight", [EmbeddingSize, FeedForward], Normal(random, EmbeddingSize * FeedForward, 0.1f))
                .AddTensor(p + "ffn_up.weight", [EmbeddingSize, FeedForward], Normal(random, EmbeddingSize * FeedForward, 0.1f))
                .AddTensor(p + "ffn_down.weight", [FeedForward, EmbeddingSize], Normal(random, FeedForward * EmbeddingSize, 0.1f));
            if (architecture == "qwen2")
            {
                gguf.AddTensor(p + "attn_q.bias", [EmbeddingSize], Normal(random, EmbeddingSize, 0.5f))
                    .AddTensor(p + "attn_k.bias", [kv], Normal(random, kv, 0.5f))
                    .AddTensor(p + "attn_v.bias", [kv], Normal(random, kv, 0.5f));
            }
            if (architecture == "qwen3")
            {
                gguf.AddTensor(p + "attn_q_norm.weight", [HeadSize], Scales(random, HeadSize))
                    .AddTensor(p + "attn_k_norm.weight", [HeadSize], Scales(random, HeadSize));
            }
        }
        gguf.AddTensor("output_norm.weight", [EmbeddingSize], Ones(EmbeddingSize))
            .AddTensor("output.weight", [EmbeddingSize, vocab], Normal(random, EmbeddingSize * vocab, 0.5f));
        if (editTensor is not null)
        {
            gguf.EditTensors(editTensor);
        }
        gguf.Write(path);
    }

    // Norm weights around 1 that differ per channel, so a skipped norm changes the scores.
    private static float[] Scales(Random random, int n) => Enumerable.Range(0, n).Select(_ => (float)(0.5 + random.NextDouble())).ToArray();

    private static float[] Ones(int n) => Enumerable.Repeat(1f, n).ToArray();

    private static float[] Normal(Random random, int n, float scale)
    {
        var data = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            data[i] = (float)(scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return data;
    }
}
