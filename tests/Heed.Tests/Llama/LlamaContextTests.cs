using Heed.Llama;

namespace Heed.Tests.Llama;

[Collection(TinyModelCollection.Name)]
public sealed class LlamaContextTests(TinyModelFixture fixture)
{
    private const string Prompt = "the pass key is 48213 . remember the pass key . the quick brown fox";

    private int[] Tokens(string text) => fixture.Model.Tokenizer.Tokenize(text);

    // Different batchings reorder float32 sums inside llama.cpp's kernels; on this random-weight
    // model that moves logits by up to ~0.15% of their range. A wrong position, mask or cache
    // entry moves them by tens of percent.
    private static void AssertClose(float[] expected, float[] actual, float tolerance = 5e-3f)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = expected.Max(MathF.Abs);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= tolerance * scale,
                $"logit {i}: expected {expected[i]}, got {actual[i]}");
        }
    }

    private float[] FreshLogits(int[] tokens, int batchSize = 256)
    {
        using LlamaContext context = fixture.CreateContext(batchSize: batchSize);
        context.Evaluate(tokens);
        return context.GetLogits();
    }

    [Fact]
    public void LogitsAreFiniteAndDeterministic()
    {
        float[] first = FreshLogits(Tokens(Prompt));
        float[] second = FreshLogits(Tokens(Prompt));
        Assert.Equal(fixture.Model.VocabularySize, first.Length);
        Assert.All(first, v => Assert.True(float.IsFinite(v)));
        Assert.True(first.Max() - first.Min() > 1e-3f, "logits should not be constant");
        Assert.Equal(first, second);
    }

    [Fact]
    public void SmallBatchesGiveTheSameLogitsAsOneBatch()
    {
        int[] tokens = Tokens(Prompt + " jumps over the lazy dog . " + Prompt);
        Assert.True(tokens.Length > 40);
        AssertClose(FreshLogits(tokens), FreshLogits(tokens, batchSize: 16));
    }

    [Fact]
    public void AllLogitsRowsMatchOneByOneDecoding()
    {
        int[] tokens = Tokens(Prompt);
        using LlamaContext all = fixture.CreateContext();
        all.Evaluate(tokens, allLogits: true);
        Assert.Equal(tokens.Length, all.LastBatchOutputs);
        using LlamaContext stepwise = fixture.CreateContext();
        for (int i = 0; i < tokens.Length; i++)
        {
            stepwise.Evaluate(tokens.AsSpan(i, 1));
            AssertClose(stepwise.GetLogits(), all.GetLogits(i));
        }
    }

    [Fact]
    public void RemovingTokensAndDecodingAgainEqualsAFreshDecode()
    {
        int[] a = Tokens("the pass key is");
        int[] b = fixture.Model.Tokenizer.Tokenize(" hidden in the text", addSpecial: false);
        int[] c = fixture.Model.Tokenizer.Tokenize(" 48213 . remember it", addSpecial: false);
        using LlamaContext context = fixture.CreateContext();
        context.Evaluate(a);
        context.Evaluate(b);
        context.RemoveTokens(0, a.Length);
        Assert.Equal(a.Length, context.NextPosition());
        context.Evaluate(c);
        AssertClose(FreshLogits([.. a, .. c]), context.GetLogits());
    }

    [Fact]
    public void StateSaveAndRestoreReproducesTheLogits()
    {
        int[] a = Tokens("the pass key is");
        int[] b = fixture.Model.Tokenizer.Tokenize(" 48213 . remember", addSpecial: false);
        using LlamaContext context = fixture.CreateContext();
        context.Evaluate(a);
        byte[] state = context.SaveState();
        byte[] sequenceState = context.SaveSequenceState();
        context.Evaluate(b);
        float[] expected = context.GetLogits();

        context.LoadState(state);
        Assert.Equal(a.Length, context.NextPosition());
        context.Evaluate(b);
        Assert.Equal(expected, context.GetLogits());

        using LlamaContext other = fixture.CreateContext();
        other.LoadSequenceState(sequenceState);
        Assert.Equal(a.Length, other.NextPosition());
        other.Evaluate(b);
        AssertClose(expected, other.GetLogits());
    }

    [Fact]
    public void CopiedSequencesShareThePrefix()
    {
        int[] a = Tokens("the pass key is");
        int[] b = fixture.Model.Tokenizer.Tokenize(" 48213", addSpecial: false);
        using LlamaContext context = fixture.CreateContext(sequences: 2);
        context.Evaluate(a, sequence: 0);
        context.CopySequence(0, 1);
        Assert.Equal(a.Length, context.NextPosition(1));
        context.Evaluate(b, sequence: 1);
        AssertClose(FreshLogits([.. a, .. b]), context.GetLogits());
        context.KeepSequence(1);
        Assert.Equal(0, context.NextPosition(0));
        context.Clear();
        Assert.Equal(0, context.NextPosition(1));
    }

    [Fact]
    public async Task GreedyGenerationIsDeterministicAndStopsAtMaxTokens()
    {
        var options = new GenerationOptions { MaxTokens = 12 };
        using LlamaContext context = fixture.CreateContext();
        List<int> first = await context.GenerateTokensAsync(Tokens(Prompt), options).ToListAsync();
        List<int> second = await context.GenerateTokensAsync(Tokens(Prompt), options).ToListAsync();
        Assert.InRange(first.Count, 1, 12);
        Assert.Equal(first, second);

        // Greedy means argmax of the logits at every step.
        using LlamaContext check = fixture.CreateContext();
        check.Evaluate(Tokens(Prompt));
        foreach (int token in first)
        {
            float[] logits = check.GetLogits();
            Assert.Equal(Array.IndexOf(logits, logits.Max()), token);
            check.Evaluate([token]);
        }
    }

    [Fact]
    public async Task TextGenerationMatchesTheTokens()
    {
        var options = new GenerationOptions { MaxTokens = 10 };
        using LlamaContext context = fixture.CreateContext();
        string text = string.Concat(await context.GenerateAsync(Prompt, options).ToListAsync());
        List<int> tokens = await context.GenerateTokensAsync(Tokens(Prompt), options).ToListAsync();
        byte[] pieces = tokens.SelectMany(t => fixture.Model.Tokenizer.TokenToBytes(t)).ToArray();
        Assert.Equal(System.Text.Encoding.UTF8.GetString(pieces), text);
    }

    [Fact]
    public async Task SeededSamplingIsReproducible()
    {
        var options = new GenerationOptions { MaxTokens = 10, Temperature = 1.5f, TopK = 0, TopP = 1f, MinP = 0f, Seed = 7 };
        using LlamaContext context = fixture.CreateContext();
        List<int> first = await context.GenerateTokensAsync(Tokens(Prompt), options).ToListAsync();
        List<int> second = await context.GenerateTokensAsync(Tokens(Prompt), options).ToListAsync();
        Assert.Equal(first, second);
    }

    [Fact]
    public void EmbeddingsHaveTheModelsWidth()
    {
        using LlamaContext context = fixture.Model.CreateContext(new LlamaContextOptions
        {
            ContextSize = 128, BatchSize = 128, MicroBatchSize = 128, Embeddings = true, Threads = 2,
        });
        float[] first = context.GetEmbeddings("the pass key");
        float[] again = context.GetEmbeddings("the pass key");
        float[] other = context.GetEmbeddings("a lazy dog");
        Assert.Equal(fixture.Model.EmbeddingSize, first.Length);
        Assert.All(first, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public async Task OneCallerAtATime()
    {
        using LlamaContext context = fixture.CreateContext();
        await using IAsyncEnumerator<int> generation = context
            .GenerateTokensAsync(Tokens(Prompt), new GenerationOptions { MaxTokens = 5 }).GetAsyncEnumerator();
        Assert.True(await generation.MoveNextAsync());
        var e = Assert.Throws<InvalidOperationException>(() => context.Evaluate(Tokens("key")));
        Assert.Contains("one caller at a time", e.Message);
        while (await generation.MoveNextAsync())
        {
        }
        context.Evaluate(Tokens("key")); // free again once the generation ended
    }
}
