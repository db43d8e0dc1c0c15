using Heed.TestModels;

namespace Heed.Mcp.Tests;

/// <summary>
/// Bad input to the `heed` tool, run as a child process: each case must end with a nonzero exit
/// and one clear line on stderr (no stack trace, no hang, no partial work).
/// </summary>
public sealed class CliRobustnessTests(HeedProcess heed) : IClassFixture<HeedProcess>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    private async Task<string> FailsWithOneLineAsync(params string[] arguments)
    {
        (int exitCode, _, string error) = await heed.RunAsync("", Timeout, arguments);
        string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(exitCode != 0, $"heed {string.Join(' ', arguments)} exited 0; stderr: {error}");
        Assert.True(lines.Length == 1 && lines[0].StartsWith("error: ", StringComparison.Ordinal),
            $"expected one 'error:' line on stderr, got {lines.Length}:\n{error}");
        return lines[0];
    }

    private string WriteFile(string name, string text)
    {
        string path = Path.Combine(heed.Directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public async Task NeedleLengthBeyondIntIsRefused()
    {
        string error = await FailsWithOneLineAsync("bench", "needle", "--model", heed.ModelPath, "--lengths", "99999999999", "--gpu-layers", "0");
        Assert.Contains("--lengths", error);
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    public async Task NeedleDepthOutsideZeroToOneIsRefused(string depth)
    {
        string error = await FailsWithOneLineAsync("bench", "needle", "--model", heed.ModelPath, "--depths", $"0.5,{depth}", "--gpu-layers", "0");
        Assert.Contains("--depths", error);
    }

    [Theory]
    [InlineData("--tokens", "0")]
    [InlineData("--repeats", "-1")]
    [InlineData("--aggregate-on", "gpu")]
    [InlineData("--layer", "99")]
    public async Task CaptureBenchRefusesBadOptions(string option, string value)
    {
        string[] small = option == "--tokens" ? [] : ["--tokens", "600"];
        string error = await FailsWithOneLineAsync(["bench", "capture", "--model", heed.ModelPath, option, value, .. small, "--gpu-layers", "0"]);
        Assert.Contains(option, error);
    }

    [Fact]
    public async Task RerankBenchWithMorePassagesThanTheSetHasIsRefused()
    {
        string error = await FailsWithOneLineAsync("bench", "rerank", "--model", heed.ModelPath, "--passages", "400000", "--gpu-layers", "0");
        Assert.Contains("--passages", error);
    }

    [Fact]
    public async Task BenchNamesTheModelByFileAndParameterCount()
    {
        (int exitCode, string output, string error) = await heed.RunAsync("", TimeSpan.FromMinutes(4), "bench", "rerank", "--model", heed.ModelPath,
            "--split", "dev", "--cases", "1", "--passages", "2", "--context", "2048", "--gpu-layers", "0");
        Assert.True(exitCode == 0, $"exit {exitCode}; stderr: {error}");
        string flat = System.Text.RegularExpressions.Regex.Replace(output, @"\s+", " "); // the table wraps at the console width
        Assert.DoesNotContain("?B", flat);
        // TinyLlama's weights, counted from its shape: embeddings and output, 2 blocks of attention and SwiGLU, norms.
        long parameters = 2L * TinyLlama.VocabularySize * TinyLlama.EmbeddingSize + TinyLlama.EmbeddingSize
                          + TinyLlama.Layers * (2L * TinyLlama.EmbeddingSize * TinyLlama.EmbeddingSize
                                                + 2L * TinyLlama.EmbeddingSize * TinyLlama.KvHeads * TinyLlama.HeadSize
                                                + 3L * TinyLlama.EmbeddingSize * TinyLlama.FeedForward + 2L * TinyLlama.EmbeddingSize);
        Assert.Contains($"tiny-llama.gguf (llama, {parameters / 1e3:F0}K parameters)", flat);
    }

    [Theory]
    [InlineData("rerank")]
    [InlineData("ask")]
    public async Task Gpt2ModelIsRefusedWithoutAStackTrace(string command)
    {
        string gpt2 = Path.Combine(heed.Directory, $"gpt2-{command}.gguf");
        TinyGpt2.Write(gpt2);
        string[] input = command == "rerank"
            ? ["--query", "the key", "--docs", WriteFile("gpt2-docs.jsonl", "\"the pass key\"\n\"the fox\"\n")]
            : ["--question", "what is the key?", "--file", WriteFile("gpt2-doc.txt", "The pass key is 1234. The fox is quick.")];
        string error = await FailsWithOneLineAsync([command, "--model", gpt2, .. input, "--gpu-layers", "0"]);
        Assert.Contains("gpt2", error);
    }

    [Fact]
    public async Task AskWithAQuestionTooLongForTheContextFailsBeforeReading()
    {
        // About 130 tokens (the tiny tokenizer has no digit merges: one token per digit). With a
        // 256-token context and a 64-token cache the old up-front check let it through, and the
        // long sentence below, next to a full cache, then overflowed the context partway.
        string question = "what is the pass key " + string.Concat(Enumerable.Range(0, 110).Select(i => (char)('0' + i % 10))) + " ?";
        string longSentence = string.Join(" ", Enumerable.Repeat("the pass key is hidden in the text and", 30)) + ". ";
        string document = WriteFile("long-question-doc.txt",
            string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog . " + longSentence, 20)));
        string error = await FailsWithOneLineAsync("ask", "--model", heed.ModelPath, "--file", document, "--question", question,
            "--context", "256", "--layer", "0", "--gpu-layers", "0");
        Assert.Matches(@"question takes 1\d\d tokens", error);
    }

    [Theory]
    [InlineData("ask")]
    [InlineData("rerank")]
    public async Task DirectoryAsFileSaysItIsADirectory(string command)
    {
        string[] input = command == "ask" ? ["--question", "what?", "--file", heed.Documents] : ["--query", "what?", "--docs", heed.Documents];
        string error = await FailsWithOneLineAsync([command, "--model", heed.ModelPath, .. input, "--gpu-layers", "0"]);
        Assert.Contains("is a directory", error);
    }

    [Theory]
    [InlineData("{\"text\": 5}")]
    [InlineData("{\"title\": \"no text\"}")]
    [InlineData("[\"a\"]")]
    public async Task JsonlLineWithoutATextStringNamesItsLine(string badLine)
    {
        string docs = WriteFile("bad-text.jsonl", "{\"text\": \"the pass key\"}\n\n" + badLine + "\n");
        string error = await FailsWithOneLineAsync("rerank", "--model", heed.ModelPath, "--query", "key", "--docs", docs, "--gpu-layers", "0");
        Assert.Contains("line 3", error);
    }

    [Theory]
    [InlineData("search")]
    [InlineData("ask")]
    public async Task MistypedIndexIsAnError(string command)
    {
        string index = Path.Combine(heed.Directory, "no-such.heedindex");
        string error = await FailsWithOneLineAsync("rag", command, "what is the key?", "--index", index, "--model", heed.ModelPath, "--gpu-layers", "0");
        Assert.Contains("does not exist", error);
        Assert.False(File.Exists(index), "a search must not create the index it was pointed at");
    }
}
