using Heed.Llama;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Heed.Hosting;

/// <summary>
/// Loads the configured model once (on first need, or at start with <see cref="HeedOptions.LoadModelOnStart"/>)
/// and, only when the GPU path fails, a CPU-only copy for the fallback.
/// </summary>
public sealed class HeedModelProvider : IDisposable
{
    private readonly HeedOptions _options;
    private readonly ILogger _logger;
    private readonly Lazy<Task<LlamaModel>> _model;
    private readonly Lazy<Task<LlamaModel>> _cpuModel;
    private readonly bool _ownsModel;

    /// <summary>Loads the model that <paramref name="options"/> names.</summary>
    public HeedModelProvider(IOptions<HeedOptions> options, ILogger<HeedModelProvider>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _ownsModel = true;
        _model = new Lazy<Task<LlamaModel>>(() => LoadPrimaryAsync());
        _cpuModel = new Lazy<Task<LlamaModel>>(() => LoadAsync(0, "CPU fallback"));
    }

    /// <summary>Serves a model the caller loaded and disposes; it is also the CPU fallback.</summary>
    public HeedModelProvider(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        _options = new HeedOptions { ModelPath = model.Path, GpuLayers = 0, CpuFallback = false };
        _logger = NullLogger.Instance;
        _model = new Lazy<Task<LlamaModel>>(Task.FromResult(model));
        _cpuModel = _model;
    }

    // Tests stand in a loaded pair of models for a GPU model and its CPU copy.
    internal HeedModelProvider(LlamaModel primary, LlamaModel cpu, HeedOptions options)
    {
        _options = options;
        _logger = NullLogger.Instance;
        _model = new Lazy<Task<LlamaModel>>(Task.FromResult(primary));
        _cpuModel = new Lazy<Task<LlamaModel>>(Task.FromResult(cpu));
        _usesGpu = true;
    }

    private readonly bool? _usesGpu;

    /// <summary>Whether the primary model may run on a GPU, so that a CPU fallback makes sense.</summary>
    public bool UsesGpu => _usesGpu ?? (_options.GpuLayers != 0 && LlamaBackend.HasGpu);

    /// <summary>The primary model (GPU layers as configured).</summary>
    public Task<LlamaModel> GetModelAsync(CancellationToken cancellationToken = default) =>
        _model.Value.WaitAsync(cancellationToken);

    /// <summary>The CPU-only copy, loaded on first call.</summary>
    public Task<LlamaModel> GetCpuModelAsync(CancellationToken cancellationToken = default) =>
        _cpuModel.Value.WaitAsync(cancellationToken);

    private async Task<LlamaModel> LoadPrimaryAsync()
    {
        try
        {
            return await LoadAsync(_options.GpuLayers, "primary").ConfigureAwait(false);
        }
        catch (HeedModelFormatException e) when (UsesGpu && _options.CpuFallback)
        {
            // llama.cpp reports a GPU allocation failure as a failed load; let the CPU fallback try the same file.
            throw new HeedNativeException($"Loading the model with {_options.GpuLayers} GPU layers failed: {e.Message}", inner: e);
        }
    }

    // Loads run without the caller's token: a cancelled request must not leave a cancelled model for everyone.
    private async Task<LlamaModel> LoadAsync(int gpuLayers, string role)
    {
        _logger.LogInformation("Loading the {Role} model {Path} ({GpuLayers} GPU layers).", role, _options.ModelPath, gpuLayers);
        LlamaModel model = await LlamaModel.LoadAsync(_options.ModelPath, new LlamaModelOptions { GpuLayers = gpuLayers }).ConfigureAwait(false);
        _logger.LogInformation("Loaded {Description}.", model.Description);
        return model;
    }

    /// <summary>Frees the models it loaded.</summary>
    public void Dispose()
    {
        if (!_ownsModel)
        {
            return;
        }
        foreach (Lazy<Task<LlamaModel>> lazy in new[] { _model, _cpuModel })
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully)
            {
                lazy.Value.Result.Dispose();
            }
        }
    }
}
