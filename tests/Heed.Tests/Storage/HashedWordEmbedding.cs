using Microsoft.Extensions.AI;

namespace Heed.Tests.Storage;

/// <summary>
/// A bag of words hashed (FNV-1a) into 32 dimensions: deterministic, with small integer components (sums exact in
/// float), and many ties: repeated sentences and hash collisions give different chunks equal cosines.
/// </summary>
internal sealed class HashedWordEmbedding : IEmbeddingGenerator<string, Embedding<float>>
{
    private const int Dimensions = 32;

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default) =>
        Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(Embed(v)))));

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }

    private static float[] Embed(string text)
    {
        var vector = new float[Dimensions];
        foreach (string word in text.ToLowerInvariant().Split([' ', '.', ',', '?', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            uint hash = 2166136261;
            foreach (char c in word)
            {
                hash = (hash ^ c) * 16777619;
            }
            vector[hash % Dimensions] += 1;
        }
        return vector;
    }
}
