namespace Heed.TestModels;

/// <summary>
/// A tiny GPT-2-architecture GGUF with random weights: learned positions, no RoPE, fused QKV.
/// llama.cpp runs it, but its graph names tensors differently from Llama's, so the tests use
/// it to check that attention capture refuses it clearly.
/// </summary>
public static class TinyGpt2
{
    private const int Embedding = 32, Layers = 1, Heads = 2, FeedForward = 64, Context = 128;

    public static void Write(string path, int seed = 99)
    {
        var random = new Random(seed);
        var tokens = new List<string>(ByteLevelBpe.ByteToUnicode) { "<|endoftext|>" };
        int vocab = tokens.Count;
        float[] Normal(int n) => Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() - 0.5) * 0.2)).ToArray();
        float[] Fill(int n, float v) => Enumerable.Repeat(v, n).ToArray();

        var gguf = new GgufWriter()
            .Add("general.architecture", "gpt2")
            .Add("general.name", "heed-tiny-gpt2")
            .Add("gpt2.context_length", (uint)Context)
            .Add("gpt2.embedding_length", (uint)Embedding)
            .Add("gpt2.block_count", (uint)Layers)
            .Add("gpt2.feed_forward_length", (uint)FeedForward)
            .Add("gpt2.attention.head_count", (uint)Heads)
            .Add("gpt2.attention.layer_norm_epsilon", 1e-5f)
            .Add("tokenizer.ggml.model", "gpt2")
            .Add("tokenizer.ggml.pre", "gpt-2")
            .Add("tokenizer.ggml.tokens", tokens)
            .Add("tokenizer.ggml.token_type", Enumerable.Repeat(1, vocab - 1).Append(3).ToList())
            .Add("tokenizer.ggml.merges", Array.Empty<string>())
            .Add("tokenizer.ggml.bos_token_id", (uint)(vocab - 1))
            .Add("tokenizer.ggml.eos_token_id", (uint)(vocab - 1));
        gguf.AddTensor("token_embd.weight", [Embedding, vocab], Normal(Embedding * vocab))
            .AddTensor("position_embd.weight", [Embedding, Context], Normal(Embedding * Context));
        for (int layer = 0; layer < Layers; layer++)
        {
            string p = $"blk.{layer}.";
            gguf.AddTensor(p + "attn_norm.weight", [Embedding], Fill(Embedding, 1))
                .AddTensor(p + "attn_norm.bias", [Embedding], Fill(Embedding, 0))
                .AddTensor(p + "attn_qkv.weight", [Embedding, 3 * Embedding], Normal(3 * Embedding * Embedding))
                .AddTensor(p + "attn_qkv.bias", [3 * Embedding], Fill(3 * Embedding, 0))
                .AddTensor(p + "attn_output.weight", [Embedding, Embedding], Normal(Embedding * Embedding))
                .AddTensor(p + "attn_output.bias", [Embedding], Fill(Embedding, 0))
                .AddTensor(p + "ffn_norm.weight", [Embedding], Fill(Embedding, 1))
                .AddTensor(p + "ffn_norm.bias", [Embedding], Fill(Embedding, 0))
                .AddTensor(p + "ffn_up.weight", [Embedding, FeedForward], Normal(Embedding * FeedForward))
                .AddTensor(p + "ffn_up.bias", [FeedForward], Fill(FeedForward, 0))
                .AddTensor(p + "ffn_down.weight", [FeedForward, Embedding], Normal(FeedForward * Embedding))
                .AddTensor(p + "ffn_down.bias", [Embedding], Fill(Embedding, 0));
        }
        gguf.AddTensor("output_norm.weight", [Embedding], Fill(Embedding, 1))
            .AddTensor("output_norm.bias", [Embedding], Fill(Embedding, 0))
            .AddTensor("output.weight", [Embedding, vocab], Normal(Embedding * vocab));
        gguf.Write(path);
    }
}
