namespace Heed.TestModels;

/// <summary>
/// Tiny models whose choice between calling a tool and answering is known by construction, for
/// testing ToolMode Auto without trusting a small model's taste. Built on <see cref="TinyLlama"/>:
/// every token has the same embedding except for one channel that marks digits; the FFNs and the
/// second layer write nothing; the first layer's queries are zero, so each head attends uniformly
/// to the whole context, and one head carries the digit channel's average back into the residual,
/// strongly scaled. So the next-token logits depend on the text through one thing only: whether
/// it holds a digit. The output row of "{" (the JSON envelope's first character) is then set:
/// </summary>
public static class ToolChoiceModel
{
    private const int DigitChannel = TinyLlama.EmbeddingSize - 1;

    /// <summary>
    /// <paramref name="callsUntilADigit"/> true: "{" is the top token while the context holds no
    /// digit and far below the rest once it does (a model that calls, then answers after a tool
    /// result with a number in it). False: "{" is always far below (a model that never calls).
    /// </summary>
    public static void Write(string path, bool callsUntilADigit)
    {
        int brace = TinyLlama.Bpe.Tokens.IndexOf("{");
        bool[] digit = TinyLlama.Bpe.Tokens.Select(t => t.Any(char.IsAsciiDigit)).ToArray();
        const int E = TinyLlama.EmbeddingSize;
        TinyLlama.Write(path, seed: 99, editTensor: (tensor, data) =>
        {
            switch (tensor)
            {
                case "token_embd.weight":
                    // Row t (E values): ones, and the digit channel 1 for tokens holding a digit.
                    for (int t = 0; t < data.Length / E; t++)
                    {
                        data.AsSpan(t * E, E).Fill(1f);
                        data[t * E + DigitChannel] = t < digit.Length && digit[t] ? 1f : 0f;
                    }
                    break;
                case "blk.0.attn_q.weight":
                    Array.Clear(data);  // equal scores: uniform attention over the context
                    break;
                case "blk.0.attn_v.weight":
                    // Value channel 0 of KV head 0 reads the digit channel.
                    Array.Clear(data);
                    data[0 * E + DigitChannel] = 1f;
                    break;
                case "blk.0.attn_output.weight":
                    // Query head 0 (KV head 0) writes its channel 0 back to the digit channel, scaled so
                    // that a few digits among hundreds of tokens dominate the normalized state.
                    Array.Clear(data);
                    data[DigitChannel * E + 0] = 6000f;
                    break;
                case "output.weight":
                    Span<float> row = data.AsSpan(brace * E, E);
                    if (callsUntilADigit)
                    {
                        row.Fill(1f);
                        row[DigitChannel] = -10f;
                    }
                    else
                    {
                        row.Fill(-1f);
                    }
                    break;
                default:
                    if (tensor.StartsWith("blk.1.attn_output", StringComparison.Ordinal) || tensor.EndsWith("ffn_down.weight", StringComparison.Ordinal))
                    {
                        Array.Clear(data);
                    }
                    break;
            }
        });
    }
}
