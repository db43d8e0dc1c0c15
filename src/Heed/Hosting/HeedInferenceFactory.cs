using Heed.Llama;
using Microsoft.Extensions.Logging;

namespace Heed.Hosting;

/// <summary>Builds the pooled, resilient inference that AddHeed registers for chat and for embeddings.</summary>
internal static class HeedInferenceFactory
{
    public static LlamaInference Create(HeedModelProvider models, HeedOptions options, string name, bool embeddings, ILoggerFactory loggers)
    {
        var contextOptions = new LlamaContextOptions
        {
            ContextSize = options.ContextSize,
            Threads = options.Threads,
            Embeddings = embeddings,
            Pooling = EmbeddingPooling.Mean,
        };
        ILogger logger = loggers.CreateLogger("Heed." + name);
        var primary = new LlamaContextPool(
            async token => (await models.GetModelAsync(token).ConfigureAwait(false)).CreateContext(contextOptions),
            options.PoolSize, name);
        var resilience = new HeedResilience(options.ToResilienceOptions(), logger);
        if (!options.CpuFallback || !models.UsesGpu)
        {
            return new LlamaInference(primary, null, resilience, logger, [primary, resilience]);
        }
        var cpuPool = new Lazy<LlamaContextPool>(() => new LlamaContextPool(
            async token => (await models.GetCpuModelAsync(token).ConfigureAwait(false)).CreateContext(contextOptions),
            options.PoolSize, name + ".cpu"));
        var disposeCpuPool = new CallbackDisposable(() =>
        {
            if (cpuPool.IsValueCreated)
            {
                cpuPool.Value.Dispose();
            }
        });
        return new LlamaInference(primary, _ => ValueTask.FromResult(cpuPool.Value), resilience, logger, [primary, resilience, disposeCpuPool]);
    }

    private sealed class CallbackDisposable(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
