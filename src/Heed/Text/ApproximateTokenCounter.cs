namespace Heed.Text;

/// <summary>
/// A model-free estimate of a text's token count, for chunking when no tokenizer is at hand: each run of letters
/// or digits counts one token per 4 characters (at least one), each other visible character one token. It tends
/// to overestimate for English (so chunks stay within a real model's budget); pass the model's
/// <see cref="Heed.Llama.Tokenizer.CountTokens"/> for exact counts.
/// </summary>
public static class ApproximateTokenCounter
{
    /// <summary>The estimated number of tokens in <paramref name="text"/>.</summary>
    public static int Count(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int tokens = 0;
        int run = 0;
        foreach (char c in text)
        {
            if (char.IsLetterOrDigit(c))
            {
                run++;
                continue;
            }
            tokens += (run + 3) / 4;
            run = 0;
            if (!char.IsWhiteSpace(c) && !char.IsLowSurrogate(c))
            {
                tokens++;
            }
        }
        return tokens + (run + 3) / 4;
    }
}
