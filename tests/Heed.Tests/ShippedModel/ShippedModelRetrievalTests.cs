using Heed.Attention;
using Heed.Retrieval;
using Heed.Tests.Retrieval;

namespace Heed.Tests.ShippedModel;

/// <summary>
/// InfiniRetri on the shipped model: a fact worded in its own way (not the pass-key template the
/// model was trained on), asked about in other words, in real prose several contexts long, at
/// several depths; the same prose without it must come back "not found".
/// </summary>
[Collection(ShippedModelCollection.Name)]
public sealed class ShippedModelRetrievalTests(ShippedModelFixture fixture)
{
    // Skipped, not passed: what the shipped model should do and does not yet (issue 10). heed-tiny
    // misses facts worded unlike its training and scores no-answer haystacks above any threshold.
    private const string HeedTinyCannot =
        "heed-tiny cannot yet find facts worded unlike its training, nor say not found on prose (issue 10); the target stays written here";

    /// <summary>The trained pass-key template, far beyond the context: what heed-tiny can do.</summary>
    [Fact]
    public async Task FindsAPassKeyInItsTrainedWordingFarBeyondTheContext()
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
        Assert.True(found.Found);
        Assert.Contains(found.Evidence, e => e.Text.Contains("71432"));
        string? answer = await retriever.AnswerFromEvidenceAsync("What is the pass key?", found);
        Assert.Contains("71432", answer);
    }

    private const string Fact = "The staging server password is 71432, and it changes every Monday.";
    private const string Answer = "71432";
    private const string Question = "What do I type to log in to the staging server?";
    private const int ContextSize = 1024;

    // Real prose held out of training (models/fixtures/heldout.txt), its paragraphs shuffled and
    // repeated to about eight contexts, with the fact put in at a depth (0: first, 1: last) or left out.
    private static string Haystack(double? depth, int seed)
    {
        string[] paragraphs = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "models", "fixtures", "heldout.txt"))
            .Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var random = new Random(seed);
        var document = new List<string>();
        while (document.Sum(p => p.Length) < 32 * ContextSize)
        {
            document.AddRange(paragraphs.OrderBy(_ => random.Next()));
        }
        if (depth is { } d)
        {
            document.Insert((int)Math.Round(d * document.Count), Fact);
        }
        return string.Join("\n\n", document);
    }

    private InfiniteRetriever Create(AttentionDevice device = AttentionDevice.Cpu) =>
        new(fixture.Model, new InfiniteRetrieverOptions { ContextSize = ContextSize, Device = device });

    [Theory(Skip = HeedTinyCannot)]
    [InlineData(0.0, 1)]
    [InlineData(0.3, 2)]
    [InlineData(0.7, 3)]
    [InlineData(1.0, 4)]
    public async Task FindsAFactWordedInItsOwnWayFarBeyondTheContext(double depth, int seed)
    {
        using InfiniteRetriever retriever = Create();
        AnswerResult result = await retriever.AnswerAsync(Question, new StringReader(Haystack(depth, seed)));
        Assert.True(result.Retrieval.TokensProcessed > 4 * ContextSize, $"{result.Retrieval.TokensProcessed} tokens is not far beyond the context");
        Assert.True(result.Retrieval.Found, "the fact is in the document but retrieval says not found");
        Evidence best = result.Retrieval.Evidence.MaxBy(e => e.Score)!;
        Assert.Contains(Answer, best.Text);
        Assert.Contains(Answer, result.Answer);
    }

    [Theory(Skip = HeedTinyCannot)]
    [InlineData(5)]
    [InlineData(6)]
    public async Task SaysNotFoundWhenTheDocumentHoldsNoAnswer(int seed)
    {
        using InfiniteRetriever retriever = Create();
        AnswerResult result = await retriever.AnswerAsync(Question, new StringReader(Haystack(null, seed)));
        Assert.False(result.Retrieval.Found, $"found '{result.Retrieval.Evidence.MaxBy(e => e.Score)?.Text}' in a document without an answer");
        Assert.Null(result.Answer);
    }

    [Fact(Skip = HeedTinyCannot)]
    public void AskSaysNotFoundWithItsOwnExitCodeAndRefusesAnEmptyFile()
    {
        string directory = Directory.CreateTempSubdirectory("heed-ask-").FullName;
        try
        {
            string noAnswer = Path.Combine(directory, "no-answer.txt");
            File.WriteAllText(noAnswer, Haystack(null, 8));
            AskProcess.Result ask = AskProcess.Run(["--model", fixture.ModelPath, "--file", noAnswer, "--question", Question,
                "--context", $"{ContextSize}", "--gpu-layers", "0"]);
            Assert.True(ask.ExitCode == 3, $"exit code {ask.ExitCode}: {ask.Errors}{ask.Output}");
            Assert.Contains("not found", ask.Output);
            Assert.DoesNotContain("answer:", ask.Output);

            string empty = Path.Combine(directory, "empty.txt");
            File.WriteAllText(empty, "");
            ask = AskProcess.Run(["--model", fixture.ModelPath, "--file", empty, "--question", Question, "--gpu-layers", "0"]);
            Assert.Equal(1, ask.ExitCode);
            Assert.Equal($"error: '{empty}' is empty; there is nothing to read.", ask.Errors.Trim());
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
