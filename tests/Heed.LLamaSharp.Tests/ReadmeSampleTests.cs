using Heed.Tests;
using Heed.Tests.ShippedModel;

namespace Heed.LLamaSharp.Tests;

/// <summary>The README's "With LLamaSharp" sample is the compiled <see cref="ReadmeSample"/>, and it runs.</summary>
public sealed class ReadmeSampleTests
{
    [Fact]
    public void TheReadmeQuotesTheCompiledSample()
    {
        string[] readme = File.ReadAllLines(Path.Combine(RepositoryPaths.Root, "README.md"));
        int section = Array.IndexOf(readme, "## With LLamaSharp");
        Assert.True(section >= 0, "README.md has no '## With LLamaSharp' section");
        int open = Array.IndexOf(readme, "```csharp", section);
        int close = Array.IndexOf(readme, "```", open + 1);
        // The quoted block starts with its using directives; the code after them is the sample.
        string[] quoted = readme[(open + 1)..close]
            .SkipWhile(l => l.Length == 0 || (l.StartsWith("using ", StringComparison.Ordinal) && !l.Contains('='))).ToArray();

        string[] source = File.ReadAllLines(Path.Combine(RepositoryPaths.Root, "tests", "Heed.LLamaSharp.Tests", "ReadmeSample.cs"));
        int begin = Array.FindIndex(source, l => l.Trim() == "// README begin");
        int end = Array.FindIndex(source, l => l.Trim() == "// README end");
        string[] compiled = source[(begin + 1)..end].Select(l => l.Length >= 8 ? l[8..] : l.Trim()).ToArray();
        Assert.Equal(compiled, quoted);
    }

    [Fact]
    public async Task TheSampleRunsOnTheShippedModel()
    {
        string longFile = Path.Combine(Path.GetTempPath(), $"heed-readme-{Guid.NewGuid():N}.txt");
        const string filler = "The package manager keeps track of installed files. The manual page lists the options of each command. ";
        File.WriteAllText(longFile, string.Concat(Enumerable.Repeat(filler, 60)) + "The pass key is 71432. " + string.Concat(Enumerable.Repeat(filler, 60)));
        try
        {
            string[] documents = ["Apache reads httpd.conf at start.", "go test runs the tests of a Go package.", "Logs rotate weekly."];
            var (ranked, answer, rag) = await ReadmeSample.RunAsync(ShippedModelFixture.ModelFile, documents, longFile);
            Assert.Equal(documents.Length, ranked.Count);
            Assert.NotEmpty(answer.Retrieval.Evidence);
            Assert.NotNull(rag.Reranker);
            Assert.IsType<LLamaSharpEngine>(rag.ChatClient!.GetService(typeof(Heed.Llama.IInferenceEngine)));
        }
        finally
        {
            File.Delete(longFile);
        }
    }
}
