using Heed.Llama;

namespace Heed.Tests.Llama;

[Collection(TinyModelCollection.Name)]
public sealed class BadInputTests(TinyModelFixture fixture)
{
    private string TempFile(string name, byte[] content)
    {
        string path = Path.Combine(fixture.Directory, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    [Fact]
    public async Task MissingFile()
    {
        var e = await Assert.ThrowsAsync<FileNotFoundException>(() => LlamaModel.LoadAsync(Path.Combine(fixture.Directory, "nope.gguf")));
        Assert.Contains("nope.gguf", e.Message);
    }

    [Fact]
    public async Task DirectoryInsteadOfFile()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => LlamaModel.LoadAsync(fixture.Directory));
        Assert.Contains("directory", e.Message);
    }

    [Fact]
    public async Task EmptyPath()
    {
        await Assert.ThrowsAnyAsync<ArgumentException>(() => LlamaModel.LoadAsync(""));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => LlamaModel.LoadAsync(null!));
    }

    [Fact]
    public async Task NotAGguf()
    {
        string path = TempFile("notes.gguf", "this is plain text, not a model file"u8.ToArray());
        var e = await Assert.ThrowsAsync<HeedModelFormatException>(() => LlamaModel.LoadAsync(path));
        Assert.Contains("magic", e.Message);
        string empty = TempFile("empty.gguf", []);
        await Assert.ThrowsAsync<HeedModelFormatException>(() => LlamaModel.LoadAsync(empty));
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.05)]
    [InlineData(0.999)]
    public async Task TruncatedGguf(double fraction)
    {
        byte[] whole = File.ReadAllBytes(fixture.ModelPath);
        string path = TempFile($"truncated-{fraction}.gguf", whole[..(int)(whole.Length * fraction)]);
        var e = await Assert.ThrowsAsync<HeedModelFormatException>(() => LlamaModel.LoadAsync(path, new LlamaModelOptions { GpuLayers = 0 }));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public async Task EmptyPrompt()
    {
        using LlamaContext context = fixture.CreateContext();
        await Assert.ThrowsAsync<ArgumentException>(async () => await context.GenerateAsync("").ToListAsync());
        await Assert.ThrowsAsync<ArgumentException>(async () => await context.GenerateTokensAsync([]).ToListAsync());
        Assert.Throws<ArgumentException>(() => context.Evaluate([]));
    }

    [Fact]
    public async Task PromptLongerThanTheContext()
    {
        using LlamaContext context = fixture.CreateContext(contextSize: 32, batchSize: 32);
        Assert.InRange(context.ContextSize, 32, 512); // llama.cpp may round the size up
        string prompt = string.Join(" ", Enumerable.Repeat("the pass key is 48213 .", 100));
        int[] tokens = fixture.Model.Tokenizer.Tokenize(prompt);
        Assert.True(tokens.Length > context.ContextSize);
        var e = Assert.Throws<ArgumentException>(() => context.Evaluate(tokens));
        Assert.Contains($"context holds {context.ContextSize}", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(async () => await context.GenerateAsync(prompt).ToListAsync());
        // The failed call left the cache empty and usable.
        Assert.Equal(0, context.NextPosition());
        context.Evaluate(tokens.AsSpan(0, 10));
    }

    [Fact]
    public async Task NegativeAndZeroSizes()
    {
        LlamaModel model = fixture.Model;
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateContext(new LlamaContextOptions { ContextSize = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateContext(new LlamaContextOptions { BatchSize = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateContext(new LlamaContextOptions { MicroBatchSize = 1024, BatchSize = 512 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateContext(new LlamaContextOptions { Threads = -2 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateContext(new LlamaContextOptions { SequenceCount = 0 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => LlamaModel.LoadAsync(fixture.ModelPath, new LlamaModelOptions { GpuLayers = -2 }));
        using LlamaContext context = fixture.CreateContext();
        int[] prompt = model.Tokenizer.Tokenize("key");
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await context.GenerateTokensAsync(prompt, new GenerationOptions { MaxTokens = 0 }).ToListAsync());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await context.GenerateTokensAsync(prompt, new GenerationOptions { Temperature = -1 }).ToListAsync());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await context.GenerateTokensAsync(prompt, new GenerationOptions { TopP = 0 }).ToListAsync());
        Assert.Throws<ArgumentOutOfRangeException>(() => context.Evaluate(prompt, sequence: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => context.RemoveTokens(0, -5));
        Assert.Throws<ArgumentOutOfRangeException>(() => context.Evaluate([model.VocabularySize]));
    }

    [Fact]
    public void UseAfterDispose()
    {
        LlamaContext context = fixture.CreateContext();
        context.Dispose();
        context.Dispose(); // twice is fine
        Assert.Throws<ObjectDisposedException>(() => context.Evaluate([1]));
        Assert.Throws<ObjectDisposedException>(() => context.GetLogits());

        LlamaModel model = LlamaModel.Load(fixture.ModelPath, new LlamaModelOptions { GpuLayers = 0 });
        LlamaContext survivor = model.CreateContext(new LlamaContextOptions { ContextSize = 64, BatchSize = 64, MicroBatchSize = 64 });
        int[] tokens = model.Tokenizer.Tokenize("the pass key");
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.Tokenizer.Tokenize("key"));
        Assert.Throws<ObjectDisposedException>(() => model.CreateContext());
        survivor.Evaluate(tokens); // the context keeps the weights alive until it is disposed
        Assert.All(survivor.GetLogits(), v => Assert.True(float.IsFinite(v)));
        survivor.Dispose();
    }

    [Fact]
    public async Task CancellationMidGeneration()
    {
        using LlamaContext context = fixture.CreateContext();
        using var cts = new CancellationTokenSource();
        var seen = new List<int>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (int token in context.GenerateTokensAsync(fixture.Model.Tokenizer.Tokenize("the pass key is"),
                               new GenerationOptions { MaxTokens = 100 }, cts.Token))
            {
                seen.Add(token);
                if (seen.Count == 2)
                {
                    await cts.CancelAsync();
                }
            }
        });
        Assert.Equal(2, seen.Count);
        // The context is free and usable again.
        context.Clear();
        context.Evaluate(fixture.Model.Tokenizer.Tokenize("key"));
    }
}
