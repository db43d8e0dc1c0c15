using System.Diagnostics;
using System.Numerics.Tensors;
using Heed.Hosting;
using Heed.Llama;
using Microsoft.Extensions.AI;

namespace Heed.AI;

/// <summary>
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over a local llama.cpp model: one
/// mean-pooled vector per text, L2-normalised (unit length, so a dot product is the cosine
/// similarity). Contexts must be created with <see cref="LlamaContextOptions.Embeddings"/> = true;
/// one call leases one context for all its texts.
/// </summary>
public sealed class LlamaEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly LlamaInference _inference;
    private readonly bool _ownsInference;
    private readonly EmbeddingGeneratorMetadata _metadata;

    /// <summary>Embeds through <paramref name="inference"/>, whose contexts have Embeddings = true.</summary>
    /// <param name="inference">Leases embedding contexts; not disposed with the generator.</param>
    /// <param name="modelId">The id reported in results; null: the model file's name.</param>
    public LlamaEmbeddingGenerator(LlamaInference inference, string? modelId = null)
    {
        ArgumentNullException.ThrowIfNull(inference);
        _inference = inference;
        ModelId = modelId;
        _metadata = new EmbeddingGeneratorMetadata("heed", null, modelId);
    }

    /// <summary>Embeds with its own pool of <paramref name="poolSize"/> embedding contexts over a loaded model.</summary>
    /// <param name="model">The model; not disposed with the generator.</param>
    /// <param name="contextSize">Tokens per context (longest text); 0 takes the model's.</param>
    /// <param name="poolSize">Calls served at once.</param>
    public LlamaEmbeddingGenerator(LlamaModel model, int contextSize = 512, int poolSize = 1)
        : this(LlamaInference.ForModel(model, new LlamaContextOptions { ContextSize = contextSize, Embeddings = true, Pooling = EmbeddingPooling.Mean },
            poolSize, "embedding"), null)
    {
        _ownsInference = true;
        _metadata = new EmbeddingGeneratorMetadata("heed", null, Path.GetFileNameWithoutExtension(model.Path), model.EmbeddingSize);
    }

    /// <summary>The id reported in results, or null for the model file's name.</summary>
    public string? ModelId { get; }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">No texts, or a text that is empty or only whitespace.</exception>
    /// <exception cref="NotSupportedException">Dimensions other than the model's were asked for.</exception>
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        string[] texts = values.ToArray();
        for (int i = 0; i < texts.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(texts[i]))
            {
                throw new ArgumentException($"Text {i} is empty or only whitespace; there is nothing to embed.", nameof(values));
            }
        }
        if (options?.Dimensions is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Dimensions, "EmbeddingGenerationOptions.Dimensions must be positive.");
        }
        if (texts.Length == 0)
        {
            return [];
        }
        return await _inference.RunAsync((context, token) => Task.Run(() => Embed(context, texts, options, token), token), cancellationToken)
            .ConfigureAwait(false);
    }

    private GeneratedEmbeddings<Embedding<float>> Embed(LlamaContext context, string[] texts, EmbeddingGenerationOptions? options,
        CancellationToken cancellationToken)
    {
        if (!context.Options.Embeddings)
        {
            throw new InvalidOperationException("The pooled contexts were created without Embeddings = true; create the embedding pool with LlamaContextOptions.Embeddings.");
        }
        LlamaModel model = context.Model;
        if (options?.Dimensions is { } dimensions && dimensions != model.EmbeddingSize)
        {
            throw new NotSupportedException($"The model makes {model.EmbeddingSize}-dimensional embeddings; {dimensions} were asked for.");
        }
        using Activity? activity = HeedTelemetry.ActivitySource.StartActivity("heed.embed");
        activity?.SetTag("heed.embed.texts", texts.Length);
        string modelId = options?.ModelId ?? ModelId ?? Path.GetFileNameWithoutExtension(model.Path);
        var result = new GeneratedEmbeddings<Embedding<float>>(texts.Length);
        long inputTokens = 0;
        foreach (string text in texts)
        {
            cancellationToken.ThrowIfCancellationRequested();
            inputTokens += model.Tokenizer.Tokenize(text).Length;
            float[] vector = context.GetEmbeddings(text, cancellationToken);
            Normalize(vector);
            result.Add(new Embedding<float>(vector) { ModelId = modelId, CreatedAt = DateTimeOffset.UtcNow });
        }
        result.Usage = new UsageDetails { InputTokenCount = inputTokens, TotalTokenCount = inputTokens };
        return result;
    }

    // Unit length makes dot products cosine similarities; a zero vector stays zero.
    private static void Normalize(float[] vector)
    {
        float norm = TensorPrimitives.Norm(vector);
        if (norm > 0 && float.IsFinite(norm))
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }
        if (serviceType == typeof(EmbeddingGeneratorMetadata))
        {
            return _metadata;
        }
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Frees the generator's own pool when it made one.</summary>
    public void Dispose()
    {
        if (_ownsInference)
        {
            _inference.Dispose();
        }
    }
}
