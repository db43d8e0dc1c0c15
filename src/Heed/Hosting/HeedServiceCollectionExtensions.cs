using Heed.AI;
using Heed.Llama;
using Heed.Rag;
using Heed.Ranking;
using Heed.Retrieval;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Heed.Hosting;

/// <summary>Registers Heed in a service collection.</summary>
public static class HeedServiceCollectionExtensions
{
    /// <summary>
    /// Adds Heed: <see cref="HeedOptions"/> (validated when the host starts), the model (loaded
    /// once), pooled contexts with timeout, concurrency limit and GPU-to-CPU fallback,
    /// <see cref="IChatClient"/>, <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>,
    /// <see cref="InContextRerankerPool"/> (as <see cref="IDocumentReranker"/>), <see cref="InfiniteRetriever"/>
    /// (as <see cref="ILongContextRetriever"/>), <see cref="RagPipeline"/> (as <see cref="IKnowledgeBase"/>,
    /// file-backed when <see cref="HeedOptions.IndexPath"/> is set), <see cref="HeedResilience"/> and
    /// <see cref="HeedTools"/>. Services of your own registered before AddHeed win.
    /// </summary>
    /// <param name="services">The collection.</param>
    /// <param name="configure">Sets the options; at least <see cref="HeedOptions.ModelPath"/>.</param>
    public static IServiceCollection AddHeed(this IServiceCollection services, Action<HeedOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<HeedOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HeedOptions>, HeedOptionsValidator>());
        services.TryAddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.TryAdd(ServiceDescriptor.Singleton(typeof(ILogger<>), typeof(Logger<>)));

        services.TryAddSingleton(sp => new HeedModelProvider(sp.GetRequiredService<IOptions<HeedOptions>>(), sp.GetService<ILogger<HeedModelProvider>>()));
        services.TryAddSingleton(sp => sp.GetRequiredService<HeedModelProvider>().GetModelAsync().GetAwaiter().GetResult());
        services.TryAddSingleton(sp => new HeedResilience(Options(sp).ToResilienceOptions(), Loggers(sp).CreateLogger("Heed.Store")));
        services.TryAddKeyedSingleton(HeedServiceKeys.Chat, (sp, _) =>
            HeedInferenceFactory.Create(sp.GetRequiredService<HeedModelProvider>(), Options(sp), "chat", embeddings: false, Loggers(sp)));
        services.TryAddKeyedSingleton(HeedServiceKeys.Embedding, (sp, _) =>
            HeedInferenceFactory.Create(sp.GetRequiredService<HeedModelProvider>(), Options(sp), "embedding", embeddings: true, Loggers(sp)));

        services.TryAddSingleton<IChatClient>(sp => new LlamaChatClient(
            sp.GetRequiredKeyedService<LlamaInference>(HeedServiceKeys.Chat),
            new LlamaChatClientOptions
            {
                FallbackTemplate = Options(sp).FallbackChatTemplate,
                DefaultMaxOutputTokens = Options(sp).DefaultMaxOutputTokens,
            },
            Loggers(sp).CreateLogger<LlamaChatClient>()));
        services.TryAddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(sp =>
            new LlamaEmbeddingGenerator(sp.GetRequiredKeyedService<LlamaInference>(HeedServiceKeys.Embedding)));

        // Up to PoolSize rerankers, each with its own attention-capture context over the one model,
        // serve that many calls at once (Threads 0: they split the cores between them).
        services.TryAddSingleton(sp => new InContextRerankerPool(sp.GetRequiredService<LlamaModel>(), Options(sp).PoolSize, new InContextRerankerOptions
        {
            ContextSize = Options(sp).ContextSize,
            ContextOptions = new LlamaContextOptions { Threads = Options(sp).Threads },
        }));
        services.TryAddSingleton<IDocumentReranker>(sp => new TelemetryDocumentReranker(sp.GetRequiredService<InContextRerankerPool>()));

        services.TryAddSingleton(sp => new InfiniteRetriever(sp.GetRequiredService<LlamaModel>(), new InfiniteRetrieverOptions
        {
            ContextSize = Options(sp).ContextSize,
            ContextOptions = new LlamaContextOptions { Threads = Options(sp).Threads },
        }));
        services.TryAddSingleton<ILongContextRetriever>(sp => sp.GetRequiredService<InfiniteRetriever>());

        // RAG: BM25 + embeddings, reranked by attention, answered by the chat client; file-backed with IndexPath, or another store.
        services.TryAddSingleton(sp =>
        {
            HeedOptions o = Options(sp);
            LlamaModel model = sp.GetRequiredService<LlamaModel>();
            var rag = new RagPipelineOptions
            {
                TokenCounter = model.Tokenizer.CountTokens,
                EmbeddingGenerator = sp.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>(),
                Reranker = sp.GetRequiredService<IDocumentReranker>(),
                ChatClient = sp.GetRequiredService<IChatClient>(),
                Logger = Loggers(sp).CreateLogger<RagPipeline>(),
            };
            if (o.KnowledgeStore is { } open)
            {
                return RagPipeline.Create(sp.GetRequiredService<HeedResilience>()
                    .ExecuteStoreAsync(async token => await open(Loggers(sp), token).ConfigureAwait(false))
                    .AsTask().GetAwaiter().GetResult(), rag);
            }
            return o.IndexPath is null
                ? RagPipeline.CreateInMemory(rag)
                : sp.GetRequiredService<HeedResilience>()
                    .ExecuteStoreAsync(async token => await RagPipeline.OpenAsync(o.IndexPath, rag, token).ConfigureAwait(false))
                    .AsTask().GetAwaiter().GetResult();
        });
        services.TryAddSingleton<IKnowledgeBase>(sp => new RagKnowledgeBase(sp.GetRequiredService<RagPipeline>(), sp.GetRequiredService<HeedResilience>()));

        // The tools resolve their services on first call: listing them loads nothing.
        services.TryAddSingleton(sp => new HeedTools(
            sp.GetService<IServiceProviderIsService>()?.IsService(typeof(IDocumentReranker)) == false ? null : new DeferredDocumentReranker(sp),
            sp.GetService<IServiceProviderIsService>()?.IsService(typeof(ILongContextRetriever)) == false ? null : new DeferredLongContextRetriever(sp),
            sp.GetService<IServiceProviderIsService>()?.IsService(typeof(IKnowledgeBase)) == false ? null : new DeferredKnowledgeBase(sp),
            Options(sp).AllowedRoots,
            Loggers(sp).CreateLogger<HeedTools>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Microsoft.Extensions.Hosting.IHostedService, HeedModelWarmup>());
        return services;
    }

    private static HeedOptions Options(IServiceProvider services) => services.GetRequiredService<IOptions<HeedOptions>>().Value;

    private static ILoggerFactory Loggers(IServiceProvider services) => services.GetRequiredService<ILoggerFactory>();

    /// <summary>The model AddHeed loaded (loads it now if it is not yet loaded).</summary>
    public static LlamaModel GetHeedModel(this IServiceProvider services) =>
        services.GetRequiredService<HeedModelProvider>().GetModelAsync().GetAwaiter().GetResult();
}
