namespace Heed.Llama;

/// <summary>
/// Perplexity the way llama.cpp's llama-perplexity measures it: the text is cut into chunks of
/// the context size, each chunk starts with BOS, and the tokens of the chunk's second half are
/// scored given everything before them in the chunk. Log-softmax in float64.
/// </summary>
public static class Perplexity
{
    /// <summary>The result: perplexity, scored tokens and chunks.</summary>
    public sealed record Result(double Value, int ScoredTokens, int Chunks);

    /// <summary>Measures the perplexity of <paramref name="text"/> under <paramref name="model"/>.</summary>
    /// <exception cref="ArgumentException">The text is shorter than one chunk.</exception>
    public static Result Measure(LlamaModel model, string text, int contextSize = 0, IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(text);
        int n = contextSize > 0 ? contextSize : model.TrainedContextLength;
        if (n < 16)
        {
            throw new ArgumentOutOfRangeException(nameof(contextSize), contextSize, "The context must be at least 16 tokens.");
        }
        int[] tokens = model.Tokenizer.Tokenize(text, addSpecial: false);
        int chunks = tokens.Length / n;
        if (chunks == 0)
        {
            throw new ArgumentException($"The text is {tokens.Length} tokens; at least one chunk of {n} is needed. Use a longer text or a smaller context.", nameof(text));
        }
        using LlamaContext context = model.CreateContext(new LlamaContextOptions { ContextSize = n, BatchSize = n, MicroBatchSize = Math.Min(n, 512) });
        double nll = 0;
        int scored = 0;
        int first = n / 2;
        for (int c = 0; c < chunks; c++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int[] chunk = tokens.AsSpan(c * n, n).ToArray();
            if (model.Tokenizer.BeginningOfSequence >= 0)
            {
                chunk[0] = model.Tokenizer.BeginningOfSequence;
            }
            context.Clear();
            context.Evaluate(chunk, 0, allLogits: true, cancellationToken);
            int rowOffset = n - context.LastBatchOutputs; // rows of the last native batch only
            for (int t = first; t < n - 1; t++)
            {
                float[] logits = context.GetLogits(t - rowOffset);
                nll -= LogSoftmax(logits, chunk[t + 1]);
                scored++;
            }
            progress?.Report(c + 1);
        }
        return new Result(Math.Exp(nll / scored), scored, chunks);
    }

    internal static double LogSoftmax(float[] logits, int index)
    {
        double max = double.NegativeInfinity;
        foreach (float v in logits)
        {
            max = Math.Max(max, v);
        }
        double sum = 0;
        foreach (float v in logits)
        {
            sum += Math.Exp(v - max);
        }
        return logits[index] - max - Math.Log(sum);
    }
}
