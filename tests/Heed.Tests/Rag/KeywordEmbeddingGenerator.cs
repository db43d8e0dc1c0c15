using Microsoft.Extensions.AI;

namespace Heed.Tests.Rag;

/// <summary>
/// A hand-made embedding: one dimension per word family (vehicles, fruit, animals, weather); a text's vector counts
/// its words in each family. Synonyms that BM25 cannot match ("automobile" vs "car") land on the same dimension.
/// </summary>
internal sealed class KeywordEmbeddingGenerator(string modelId = "keyword-families") : IEmbeddingGenerator<string, Embedding<float>>
{
    public static readonly string[][] Families =
    [
        ["car", "cars", "automobile", "vehicle", "engine", "truck"],
        ["apple", "banana", "fruit", "orchard", "pear"],
        ["dog", "cat", "animal", "pet", "horse"],
        ["rain", "storm", "weather", "cloud", "sunny"],
    ];

    public int Calls;

    public int TextsEmbedded;

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Interlocked.Increment(ref Calls);
        Interlocked.Add(ref TextsEmbedded, values.Count());
        var result = new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(Vector(v))));
        return Task.FromResult(result);
    }

    public static float[] Vector(string text)
    {
        float[] v = new float[Families.Length];
        foreach (string word in text.ToLowerInvariant().Split([' ', '.', ',', '?', '!', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            for (int f = 0; f < Families.Length; f++)
            {
                if (Families[f].Contains(word))
                {
                    v[f]++;
                }
            }
        }
        return v;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(EmbeddingGeneratorMetadata) ? new EmbeddingGeneratorMetadata("test", null, modelId, Families.Length) : null;

    public void Dispose()
    {
    }
}
