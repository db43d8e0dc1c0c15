using System.Diagnostics;
using System.Text.Json;
using Heed.Llama;

namespace Heed.Tests.Llama;

/// <summary>
/// The C# binding against an independent peer: tests/native/llama_peer.cpp, a C++ program on
/// llama.cpp's own C API, tokenizes the same prompt and continues it greedily.
/// </summary>
[Collection(TinyModelCollection.Name)]
public sealed class PeerCheckTests(TinyModelFixture fixture)
{
    [Theory]
    [InlineData("the pass key is 48213 . remember the pass key . what is the pass key ?")]
    [InlineData("attention finds the answer in the context")]
    public async Task SameTokensAndSameGreedyContinuationAsLlamaCppItself(string prompt)
    {
        const int predict = 24;
        int gpuLayers = TinyModelFixture.GpuLayersFromEnvironment();
        JsonElement peer = RunPeer(fixture.ModelPath, prompt, predict, gpuLayers);
        int[] peerPrompt = peer.GetProperty("prompt").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int[] peerContinuation = peer.GetProperty("continuation").EnumerateArray().Select(e => e.GetInt32()).ToArray();

        int[] tokens = fixture.Model.Tokenizer.Tokenize(prompt);
        Assert.Equal(peerPrompt, tokens);

        using LlamaContext context = fixture.Model.CreateContext(new LlamaContextOptions
        {
            ContextSize = tokens.Length + predict + 8, BatchSize = tokens.Length + predict + 8,
            MicroBatchSize = tokens.Length + predict + 8, Threads = 2,
        });
        List<int> ours = await context.GenerateTokensAsync(tokens, new GenerationOptions { MaxTokens = predict }).ToListAsync();
        // The peer includes the end-of-generation token when it stops on one; we do not return it.
        int[] expected = peerContinuation.Where(t => !fixture.Model.Tokenizer.IsEndOfGeneration(t)).ToArray();
        Assert.Equal(expected, ours);
        Assert.True(ours.Count > 0);
    }

    private static JsonElement RunPeer(string model, string prompt, int predict, int gpuLayers)
    {
        string peer = RepositoryPaths.Build("bin", "heed_llama_peer");
        Assert.True(File.Exists(peer), $"{peer} is missing; run ./build.sh native");
        var start = new ProcessStartInfo(peer) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { model, prompt, predict.ToString(), gpuLayers.ToString() })
        {
            start.ArgumentList.Add(arg);
        }
        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        string errors = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(60_000), "the peer did not finish within a minute");
        Assert.True(process.ExitCode == 0, $"the peer failed ({process.ExitCode}): {errors}");
        return JsonDocument.Parse(output).RootElement.Clone();
    }
}
