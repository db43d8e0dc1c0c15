using Microsoft.Extensions.Options;

namespace Heed.Hosting;

/// <summary>Checks <see cref="HeedOptions"/>; each failure names the setting and what to do.</summary>
public sealed class HeedOptionsValidator : IValidateOptions<HeedOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, HeedOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ModelPath))
        {
            failures.Add("Heed:ModelPath is not set; set it to a .gguf model file.");
        }
        else if (Directory.Exists(options.ModelPath))
        {
            failures.Add($"Heed:ModelPath '{options.ModelPath}' is a folder; set it to a .gguf model file inside it.");
        }
        else if (!File.Exists(options.ModelPath))
        {
            failures.Add($"Heed:ModelPath '{Path.GetFullPath(options.ModelPath)}' does not exist; set it to a .gguf model file.");
        }
        if (options.GpuLayers < -1)
        {
            failures.Add($"Heed:GpuLayers is {options.GpuLayers}; use -1 (all), 0 (none) or a positive layer count.");
        }
        if (options.ContextSize is < 0 or (> 0 and < 8))
        {
            failures.Add($"Heed:ContextSize is {options.ContextSize}; use 0 (the model's) or at least 8 tokens.");
        }
        if (options.PoolSize is < 1 or > 256)
        {
            failures.Add($"Heed:PoolSize is {options.PoolSize}; use 1 to 256 contexts.");
        }
        if (options.Threads < 0)
        {
            failures.Add($"Heed:Threads is {options.Threads}; use 0 (all cores) or a positive count.");
        }
        if (options.MaxQueuedRequests < 0)
        {
            failures.Add($"Heed:MaxQueuedRequests is {options.MaxQueuedRequests}; use 0 or more.");
        }
        if (options.RequestTimeout <= TimeSpan.Zero)
        {
            failures.Add($"Heed:RequestTimeout is {options.RequestTimeout}; use a positive time span such as 00:02:00.");
        }
        if (options.DefaultMaxOutputTokens <= 0)
        {
            failures.Add($"Heed:DefaultMaxOutputTokens is {options.DefaultMaxOutputTokens}; use a positive token count.");
        }
        if (options.StoreRetryCount < 0 || options.StoreRetryDelay < TimeSpan.Zero)
        {
            failures.Add("Heed:StoreRetryCount must be 0 or more and Heed:StoreRetryDelay not negative.");
        }
        if (options.FallbackChatTemplate is not null && string.IsNullOrWhiteSpace(options.FallbackChatTemplate))
        {
            failures.Add("Heed:FallbackChatTemplate is empty; remove it or use a llama.cpp template name such as \"chatml\".");
        }
        foreach (string? root in options.AllowedRoots ?? [])
        {
            if (string.IsNullOrWhiteSpace(root))
            {
                failures.Add("Heed:AllowedRoots has an empty entry; list existing folders only.");
            }
            else if (!Directory.Exists(root))
            {
                failures.Add($"Heed:AllowedRoots entry '{root}' is not an existing folder; create it or remove it.");
            }
        }
        if (options.IndexPath is { } index && string.IsNullOrWhiteSpace(index))
        {
            failures.Add("Heed:IndexPath is empty; remove it (in-memory index) or set a path.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
