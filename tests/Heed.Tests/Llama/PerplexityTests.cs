using Heed.Llama;

namespace Heed.Tests.Llama;

[Collection(TinyModelCollection.Name)]
public sealed class PerplexityTests(TinyModelFixture fixture)
{
    [Fact]
    public void EqualsTheMeanLogLikelihoodScoredTokenByToken()
    {
        string text = string.Concat(Enumerable.Repeat("the pass key is 48213 . remember the pass key . the quick brown fox jumps . ", 8));
        Perplexity.Result result = Perplexity.Measure(fixture.Model, text, contextSize: 64);
        int[] tokens = fixture.Model.Tokenizer.Tokenize(text, addSpecial: false);
        Assert.Equal(tokens.Length / 64, result.Chunks);
        Assert.Equal(result.Chunks * 31, result.ScoredTokens);

        // Independently: one token at a time through the plain context, logits of each step.
        double nll = 0;
        using LlamaContext context = fixture.CreateContext(contextSize: 64, batchSize: 64);
        for (int c = 0; c < result.Chunks; c++)
        {
            int[] chunk = tokens.AsSpan(c * 64, 64).ToArray();
            chunk[0] = fixture.Model.Tokenizer.BeginningOfSequence;
            context.Clear();
            for (int t = 0; t < 63; t++)
            {
                context.Evaluate(chunk.AsSpan(t, 1));
                if (t >= 32)
                {
                    float[] logits = context.GetLogits();
                    double max = logits.Max();
                    nll -= logits[chunk[t + 1]] - max - Math.Log(logits.Sum(v => Math.Exp(v - max)));
                }
            }
        }
        double expected = Math.Exp(nll / result.ScoredTokens);
        Assert.Equal(expected, result.Value, expected * 5e-3);
    }

    [Fact]
    public void TooShortTextIsAClearError()
    {
        var e = Assert.Throws<ArgumentException>(() => Perplexity.Measure(fixture.Model, "the pass key", 64));
        Assert.Contains("at least one chunk", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Perplexity.Measure(fixture.Model, "x", 8));
    }
}
