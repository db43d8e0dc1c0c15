using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Heed.Hosting;

/// <summary>Loads the model while the host starts, so a bad model fails the start instead of the first request.</summary>
internal sealed class HeedModelWarmup(HeedModelProvider models, IOptions<HeedOptions> options) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.LoadModelOnStart)
        {
            await models.GetModelAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
