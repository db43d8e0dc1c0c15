using Heed.Attention;
using Heed.Llama;

namespace Heed.LLamaSharp.Tests;

/// <summary>
/// The capture takes the ggml an engine names only when it is loaded, is a ggml-base and lays out
/// ggml_tensor as libheed expects; otherwise a clear error before any decode.
/// </summary>
public sealed class GgmlLibraryCheckTests(BothEnginesFixture engines) : IClassFixture<BothEnginesFixture>
{
    private static readonly LlamaContextOptions Context = new() { ContextSize = 128, BatchSize = 64, MicroBatchSize = 64, Threads = 2 };

    [Fact]
    public void HeedsOwnGgmlNamedByFilePassesTheCheckAndCapturesTheSameRows()
    {
        int[] tokens = engines.Heed.Tokenizer.Tokenize("The manual page lists the options of each command.");
        using var byName = new AttentionCapture(new NamedGgmlEngine(engines.Heed, "libheed-ggml-base.so"), [1], Context);
        using var linked = new AttentionCapture(engines.Heed, [1], Context);
        foreach (AttentionCapture capture in new[] { byName, linked })
        {
            capture.Evaluate(tokens, keepQueries: true, keepKeys: true);
        }
        Assert.Equal(linked.Aggregate(1, 0), byName.Aggregate(1, 0));
    }

    [Fact]
    public void ALibraryThatIsNotGgmlIsRefusedByName()
    {
        var e = Assert.Throws<HeedNativeException>(() => new AttentionCapture(new NamedGgmlEngine(engines.Heed, "libheed.so"), [0], Context));
        Assert.Contains("is not a ggml-base library", e.Message);
    }

    [Fact]
    public void AGgmlThatIsNotLoadedIsRefused()
    {
        var e = Assert.Throws<HeedNativeException>(() =>
            new AttentionCapture(new NamedGgmlEngine(engines.Heed, "libggml-base-not-here.so"), [0], Context));
        Assert.Contains("is loaded in this process", e.Message);
    }

    // Heed's engine, but naming which ggml-base the capture must read tensors with.
    private sealed class NamedGgmlEngine(LlamaModel model, string ggmlLibrary) : IInferenceEngine
    {
        private readonly IInferenceEngine _model = model;

        public string Architecture => _model.Architecture;

        public int LayerCount => _model.LayerCount;

        public int TrainedContextLength => _model.TrainedContextLength;

        public ITokenizer Tokenizer => _model.Tokenizer;

        public string? GgmlLibrary => ggmlLibrary;

        public string? GetMetadata(string key) => _model.GetMetadata(key);

        public IInferenceContext CreateContext(LlamaContextOptions options) => _model.CreateContext(options);
    }
}
