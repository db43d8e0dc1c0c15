using Heed.AI;
using Heed.Llama;
using Heed.Rag;
using Heed.Ranking;
using Microsoft.Extensions.AI;
using Xunit.Abstractions;

namespace Heed.LLamaSharp.Tests;

/// <summary>
/// The whole RAG pipeline on LLamaSharp's model (ICR reranking and the answer, both decoded through
/// LLamaSharp's contexts by Heed.LLamaSharp's engine) against the same pipeline on Heed's engine:
/// the same sources, the same greedy answer tokens and the same cited chunks.
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
            // heed-tiny's chat template is not one llama.cpp knows: both fall back to ChatML.
            var chatOptions = new LlamaChatClientOptions { FallbackTemplate = "chatml" };
            using IChatClient heedChat = new LlamaChatClient(engines.Heed, new LlamaContextOptions { ContextSize = 2048, Threads = 2 }, chatOptions);
            using IChatClient sharpChat = new LlamaChatClient(engines.LLamaSharp, new LlamaContextOptions { ContextSize = 2048, Threads = 2 }, chatOptions);
            var sharpAnswers = new RecordingChatClient(sharpChat);
            using RagPipeline heed = RagPipeline.CreateInMemory(new RagPipelineOptions { Reranker = heedReranker, ChatClient = heedChat, MaxAnswerTokens = 48 });
            using RagPipeline sharp = RagPipeline.CreateInMemory(new RagPipelineOptions { Reranker = sharpReranker, ChatClient = sharpAnswers, MaxAnswerTokens = 48 });
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
                // The answer came from LLamaSharp's context: its engine was asked, and wrote the same greedy text.
                Assert.Same(engines.LLamaSharp, sharpChat.GetService<IInferenceEngine>());
                Assert.Equal(1, sharpAnswers.TakeRequests());
                Assert.False(string.IsNullOrWhiteSpace(actual.Text));
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

    [Fact]
    public async Task GreedyTokensOfAChatPromptAreTheSameOnBothEngines()
    {
        string prompt = "<|im_start|>user\nThe staging server's pass key is 48213. What is the pass key?<|im_end|>\n<|im_start|>assistant\n";
        int[] heedTokens = engines.Heed.Tokenizer.Tokenize(prompt, addSpecial: true, parseSpecial: true);
        int[] sharpTokens = engines.LLamaSharp.Tokenizer.Tokenize(prompt, addSpecial: true, parseSpecial: true);
        Assert.Equal(heedTokens, sharpTokens);
        var contextOptions = new LlamaContextOptions { ContextSize = 512, Threads = 2 };
        // Free text, then text held to a grammar (the path tool calls and JSON replies take).
        foreach (GenerationOptions options in new[]
                 {
                     new GenerationOptions { MaxTokens = 32 },
                     new GenerationOptions { MaxTokens = 32, Grammar = "root ::= \"The pass key is \" [0-9]{1,6} \".\"" },
                 })
        {
            using IInferenceContext heed = ((IInferenceEngine)engines.Heed).CreateContext(contextOptions);
            using IInferenceContext sharp = engines.LLamaSharp.CreateContext(contextOptions);
            var expected = new List<int>();
            await foreach (int token in heed.GenerateTokensAsync(heedTokens, options, CancellationToken.None))
            {
                expected.Add(token);
            }
            var actual = new List<int>();
            await foreach (int token in sharp.GenerateTokensAsync(sharpTokens, options, CancellationToken.None))
            {
                actual.Add(token);
            }
            string text = string.Concat(actual.Select(t => System.Text.Encoding.UTF8.GetString(engines.LLamaSharp.Tokenizer.TokenToBytes(t))));
            output.WriteLine($"{(options.Grammar is null ? "free" : "grammar")}: {actual.Count} tokens: {text}");
            Assert.NotEmpty(expected);
            Assert.Equal(expected, actual);
            if (options.Grammar is not null)
            {
                Assert.Matches("^The pass key is [0-9]{1,6}\\.$", text);
            }
        }
    }

    [Fact]
    public async Task ABadGrammarIsAClearErrorOnLLamaSharpToo()
    {
        using IInferenceContext sharp = engines.LLamaSharp.CreateContext(new LlamaContextOptions { ContextSize = 256, Threads = 2 });
        int[] tokens = engines.LLamaSharp.Tokenizer.Tokenize("hello", addSpecial: true);
        var e = Assert.Throws<ArgumentException>(() => sharp.GenerateTokensAsync(tokens, new GenerationOptions { Grammar = "root ::= [unclosed" }, CancellationToken.None));
        Assert.Contains("GBNF", e.Message);  // refused before LLamaSharp sees it
        await Task.CompletedTask;
    }

    /// <summary>Counts the requests that reach the chat client it wraps.</summary>
    private sealed class RecordingChatClient(IChatClient inner) : DelegatingChatClient(inner)
    {
        private int _requests;

        public int TakeRequests() => Interlocked.Exchange(ref _requests, 0);

        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _requests);
            return base.GetResponseAsync(messages, options, cancellationToken);
        }
    }
}
