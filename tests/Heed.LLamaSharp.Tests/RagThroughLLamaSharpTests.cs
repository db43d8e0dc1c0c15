using Heed.AI;
using Heed.Llama;
using Heed.Rag;
using Heed.Ranking;
using Microsoft.Extensions.AI;
using Xunit.Abstractions;

namespace Heed.LLamaSharp.Tests;

/// <summary>
/// The RAG pipeline with its reranker on LLamaSharp's model (ICR through Heed.LLamaSharp) against
/// the same pipeline with the reranker on Heed's engine. Answers come from Heed's chat client in
/// both, so a difference in sources or citations can only come from the engine under ICR.
/// </summary>
public sealed class RagThroughLLamaSharpTests(BothEnginesFixture engines, ITestOutputHelper output) : IClassFixture<BothEnginesFixture>
{
    private static readonly string[] Files =
    [
        "Apache httpd reads its main configuration from httpd.conf when the server starts. Changes take effect after a graceful restart.",
        "The go command builds packages. go test runs the tests found in files whose names end in _test.go.",
        "A virtual host lets one Apache server answer for several domain names on one IP address.",
        "The garbage collector of Go runs concurrently with the program and frees memory that nothing refers to.",
        "Log rotation keeps the access and error logs of the server bounded in size.",
        "The staging server's pass key is 48213. Keep it out of the public repository.",
    ];

    [Fact]
    public async Task SourcesAnswersAndCitedChunksAreTheSame()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"heed-rag-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            for (int i = 0; i < Files.Length; i++)
            {
                File.WriteAllText(Path.Combine(folder, $"doc{i}.txt"), Files[i]);
            }
            var icr = new InContextRerankerOptions { ContextSize = 1024, ContextOptions = new LlamaContextOptions { Threads = 2 } };
            using var heedReranker = new InContextReranker(engines.Heed, icr);
            using var sharpReranker = new InContextReranker(engines.LLamaSharp, icr);
            using IChatClient chat = new LlamaChatClient(engines.Heed, new LlamaContextOptions { ContextSize = 2048, Threads = 2 },
                new LlamaChatClientOptions { FallbackTemplate = "chatml" });  // heed-tiny's GGUF names no chat template
            using RagPipeline heed = RagPipeline.CreateInMemory(new RagPipelineOptions { Reranker = heedReranker, ChatClient = chat, MaxAnswerTokens = 48 });
            using RagPipeline sharp = RagPipeline.CreateInMemory(new RagPipelineOptions { Reranker = sharpReranker, ChatClient = chat, MaxAnswerTokens = 48 });
            await heed.IngestAsync(folder);
            await sharp.IngestAsync(folder);

            foreach (string question in new[] { "What is the pass key of the staging server?", "Which command runs the tests of a Go package?" })
            {
                RagAnswer expected = await heed.AskAsync(question);
                RagAnswer actual = await sharp.AskAsync(question);
                output.WriteLine($"{question}\n  Heed: {expected.Text} cites [{string.Join(",", expected.CitedNumbers)}]\n" +
                                 $"  LLamaSharp: {actual.Text} cites [{string.Join(",", actual.CitedNumbers)}]");
                Assert.Equal(expected.Sources.Select(s => (s.SourcePath, s.Ordinal)), actual.Sources.Select(s => (s.SourcePath, s.Ordinal)));
                // Rerank scores agree to 1e-3 of the query's largest (the KV cache is f16 here: not bit for bit).
                double scale = expected.Sources.Max(s => Math.Abs(s.Score));
                double worst = expected.Sources.Zip(actual.Sources).Max(p => Math.Abs(p.First.Score - p.Second.Score)) / scale;
                output.WriteLine($"  rerank scores: max difference {worst:E2} of the largest");
                Assert.All(expected.Sources.Zip(actual.Sources), p => Assert.True(Math.Abs(p.First.Score - p.Second.Score) <= 1e-3 * scale,
                    $"{p.First.SourcePath}: {p.First.Score} vs {p.Second.Score}"));
                // heed-tiny often cites nothing; then both must cite nothing, with the same answer.
                Assert.Equal(expected.Text, actual.Text);
                Assert.Equal(expected.Citations.Select(c => (c.SourcePath, c.Ordinal)), actual.Citations.Select(c => (c.SourcePath, c.Ordinal)));
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
