using System.Text.Json;
using Heed.Llama;

namespace Heed.Tests.ShippedModel;

/// <summary>What the shipped model must do: tokenize as it was trained, and rank (InfiniRetri: ShippedModelRetrievalTests).</summary>
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

}
