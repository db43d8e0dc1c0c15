using Heed.Attention;
using Heed.Llama;
using Heed.Ranking;
using Heed.Retrieval;
using Heed.TestModels;

namespace Heed.Gpu.Tests;

/// <summary>
/// ICR and InfiniRetri with their attention aggregated on the GPU (AttentionDevice.Cuda) must give
/// what the CPU aggregation gives over the same hidden states.
/// </summary>
[Trait("Category", "Cuda")]
public sealed class GpuRetrievalTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("heed-gpu-retrieval-");

    private static readonly string[] Documents =
    [
        "the quick brown fox jumps over the lazy dog .",
        "the pass key is 48213 . remember the pass key .",
        "attention finds the answer in the context .",
        "retrieval ranks the documents by the mass the query gives them .",
    ];

    [Fact]
    public async Task IcrAggregatedOnTheGpuGivesTheCpuScores()
    {
        Assert.True(DeviceTensor.IsCudaAvailable, "this test needs a CUDA build of libheed and a CUDA device");
        string path = Path.Combine(_folder.FullName, "tiny-llama.gguf");
        TinyLlama.Write(path);
        using LlamaModel model = LlamaModel.Load(path);
        string[] many = [.. Documents, .. Documents.Select(d => d.Replace("the", "a"))];
        InContextReranker Create(AttentionDevice device) => new(model, new InContextRerankerOptions
        {
            ContextSize = 128, Device = device, CalibrationQuery = "N/A",
            ContextOptions = new LlamaContextOptions
            {
                Threads = 2, FlashAttention = FlashAttentionMode.Disabled, KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
            },
        });
        using InContextReranker cpu = Create(AttentionDevice.Cpu);
        using InContextReranker cuda = Create(AttentionDevice.Cuda);
        IReadOnlyList<RankedDocument> expected = await cpu.RerankAsync("what is the pass key ?", many, cancellationToken: TestContext.Current.CancellationToken);
        IReadOnlyList<RankedDocument> actual = await cuda.RerankAsync("what is the pass key ?", many, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(many.Length, actual.Count);
        foreach (RankedDocument e in expected)
        {
            double a = actual.Single(r => r.Index == e.Index).Score;
            Assert.True(Math.Abs(e.Score - a) <= 1e-4 * Math.Max(1, Math.Abs(e.Score)), $"document {e.Index}: CUDA {a} vs CPU {e.Score}");
        }
    }

    [Fact]
    public async Task InfiniRetriAggregatedOnTheGpuKeepsTheCpuEvidence()
    {
        Assert.True(DeviceTensor.IsCudaAvailable, "this test needs a CUDA build of libheed and a CUDA device");
        using LlamaModel model = LlamaModel.Load(RepositoryRoot.File("models", "heed-tiny.gguf"));
        // Real prose held out of training, about eight contexts long, one fact in the middle.
        string[] paragraphs = File.ReadAllText(RepositoryRoot.File("models", "fixtures", "heldout.txt"))
            .Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var random = new Random(7);
        var document = new List<string>();
        while (document.Sum(p => p.Length) < 32 * 1024)
        {
            document.AddRange(paragraphs.OrderBy(_ => random.Next()));
        }
        document.Insert(document.Count / 2, "The staging server password is 71432, and it changes every Monday.");
        string text = string.Join("\n\n", document);
        const string question = "What do I type to log in to the staging server?";

        InfiniteRetriever Create(AttentionDevice device) => new(model, new InfiniteRetrieverOptions { ContextSize = 1024, Device = device });
        using InfiniteRetriever cpu = Create(AttentionDevice.Cpu);
        RetrievalResult onCpu = await cpu.RetrieveAsync(question, text, cancellationToken: TestContext.Current.CancellationToken);
        using InfiniteRetriever gpu = Create(AttentionDevice.Cuda);
        RetrievalResult onGpu = await gpu.RetrieveAsync(question, text, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(onCpu.ChunksProcessed > 4, $"{onCpu.ChunksProcessed} chunks: the document should span several contexts");
        Assert.Equal(onCpu.ChunksProcessed, onGpu.ChunksProcessed);
        Assert.Equal(onCpu.Found, onGpu.Found);
        Assert.Equal(onCpu.Evidence.Select(e => e.Offset), onGpu.Evidence.Select(e => e.Offset));
        double scale = onCpu.Evidence.Max(e => Math.Abs(e.Score));
        Assert.All(onCpu.Evidence.Zip(onGpu.Evidence), pair => Assert.Equal(pair.First.Score, pair.Second.Score, 1e-4 * scale));
    }

    public void Dispose() => _folder.Delete(recursive: true);
}
