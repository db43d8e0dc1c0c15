using System.Text.Json;
using Heed.Llama;
using Heed.Retrieval;

namespace Heed.Tests.ShippedModel;

/// <summary>What the shipped model must do: tokenize as it was trained, and retrieve.</summary>
[Collection(ShippedModelCollection.Name)]
public sealed class ShippedModelTests(ShippedModelFixture fixture)
{
    [Fact]
    public void LlamaCppTokenizesHeldOutTextExactlyAsTheTrainingTokenizer()
    {
        string text = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "models", "fixtures", "heldout.txt"));
        int[] expected = JsonSerializer.Deserialize<int[]>(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "models", "fixtures", "heldout.tokens.json")))!;
        int[] actual = fixture.Model.Tokenizer.Tokenize(text, addSpecial: false);
        Assert.Equal(expected.Length, actual.Length);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void IsTheModelTheReadmeDescribes()
    {
        LlamaModel m = fixture.Model;
        Assert.Equal("llama", m.Architecture);
        Assert.Equal(8, m.LayerCount);
        Assert.Equal(6, m.HeadCount);
        Assert.Equal(2, m.KvHeadCount);
        Assert.Equal(2048, m.TrainedContextLength);
        Assert.Equal(12288, m.VocabularySize);
        Assert.InRange(m.ParameterCount, 15_000_000UL, 40_000_000UL);
    }

    [Fact]
    public async Task ContinuesAPassKeyByGreedyGeneration()
    {
        using LlamaContext context = fixture.Model.CreateContext(new LlamaContextOptions { ContextSize = 1024 });
        string filler = string.Concat(Enumerable.Repeat("The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ", 10));
        string prompt = filler + "The pass key is 60417. Remember it. 60417 is the pass key. " + filler + "What is the pass key? The pass key is";
        string answer = string.Concat(await context.GenerateAsync(prompt, new GenerationOptions { MaxTokens = 6 }).ToListAsync());
        Assert.Contains("60417", answer);
    }

    [Fact]
    public async Task InfiniRetriFindsAPassKeyFarBeyondTheContext()
    {
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < 260; i++)
        {
            text.Append("The package manager keeps track of installed files. The manual page lists the options of each command. ");
            if (i == 90)
            {
                text.Append("The pass key is 71432. Remember it. 71432 is the pass key. ");
            }
        }
        using var retriever = new InfiniteRetriever(fixture.Model, new InfiniteRetrieverOptions { ContextSize = 1024 });
        RetrievalResult found = await retriever.RetrieveAsync("What is the pass key?", text.ToString());
        Assert.True(found.TokensProcessed > 4 * retriever.ContextSize, $"{found.TokensProcessed} tokens is not far beyond the context");
        Assert.Contains(found.Evidence, e => e.Text.Contains("71432"));
        Assert.Equal(found.Evidence.Max(e => e.Score), found.Evidence.Where(e => e.Text.Contains("71432")).Max(e => e.Score));
        string answer = await retriever.AnswerFromEvidenceAsync("What is the pass key?", found);
        Assert.Contains("71432", answer);
    }
}
