using Heed.Hosting;
using Polly.RateLimiting;
using Polly.Timeout;
using Heed.Storage;

namespace Heed.Tests.Hosting;

/// <summary>Faults are injected by fake operations; the pipelines must time out, limit, fall back and retry.</summary>
public sealed class HeedResilienceTests
{
    private static HeedResilience Create(HeedResilienceOptions? options = null) => new(options ?? new HeedResilienceOptions
    {
        StoreRetryDelay = TimeSpan.FromMilliseconds(1),
    });

    [Fact]
    public async Task SlowRequestTimesOut()
    {
        using var resilience = Create(new HeedResilienceOptions { RequestTimeout = TimeSpan.FromMilliseconds(100) });
        bool sawCancellation = false;
        await Assert.ThrowsAsync<TimeoutRejectedException>(() => resilience.ExecuteRequestAsync<int>(async token =>
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(30), token);
            }
            catch (OperationCanceledException)
            {
                sawCancellation = true;
                throw;
            }
            return 1;
        }, null).AsTask());
        Assert.True(sawCancellation, "the operation's token must be cancelled at the timeout");
    }

    [Fact]
    public async Task ConcurrencyLimiterQueuesThenRejects()
    {
        using var resilience = Create(new HeedResilienceOptions { MaxConcurrentRequests = 1, MaxQueuedRequests = 1 });
        var release = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        int running = 0, peak = 0;
        async ValueTask<int> Work(CancellationToken token)
        {
            int now = Interlocked.Increment(ref running);
            peak = Math.Max(peak, now);
            int result = await release.Task.WaitAsync(token);
            Interlocked.Decrement(ref running);
            return result;
        }
        Task<int> first = resilience.ExecuteRequestAsync(Work, null).AsTask();
        Task<int> second = resilience.ExecuteRequestAsync(Work, null).AsTask();
        await WaitUntil(() => resilience.QueuedRequests == 1);
        await Assert.ThrowsAsync<RateLimiterRejectedException>(() => resilience.ExecuteRequestAsync(Work, null).AsTask());
        release.SetResult(5);
        int[] results = await Task.WhenAll(first, second);
        Assert.Equal(new[] { 5, 5 }, results);
        Assert.Equal(1, peak);
        Assert.Equal(0, resilience.QueuedRequests);
    }

    [Fact]
    public async Task GpuNativeFailureFallsBackToCpu()
    {
        using var resilience = Create();
        int cpuCalls = 0;
        int result = await resilience.ExecuteRequestAsync<int>(
            _ => throw new HeedNativeException("CUDA error: out of memory"),
            _ => { cpuCalls++; return ValueTask.FromResult(42); });
        Assert.Equal(42, result);
        Assert.Equal(1, cpuCalls);
    }

    [Fact]
    public async Task GpuOutOfMemoryFallsBackToCpu()
    {
        using var resilience = Create();
        string result = await resilience.ExecuteRequestAsync<string>(
            async _ => { await Task.Yield(); throw new OutOfMemoryException("cudaMalloc failed"); },
            _ => ValueTask.FromResult("cpu"));
        Assert.Equal("cpu", result);
    }

    [Fact]
    public async Task OtherFailuresDoNotFallBack()
    {
        using var resilience = Create();
        int cpuCalls = 0;
        ValueTask<int> Cpu(CancellationToken _) { cpuCalls++; return ValueTask.FromResult(0); }
        await Assert.ThrowsAsync<ArgumentException>(() => resilience.ExecuteRequestAsync<int>(_ => throw new ArgumentException("bad prompt"), Cpu).AsTask());
        // A stream that already sent output must not be restarted on the CPU.
        await Assert.ThrowsAsync<HeedNativeException>(() => resilience.ExecuteRequestAsync<int>(
            _ => throw new HeedNativeException("late failure"), Cpu, default, mayFallBack: () => false).AsTask());
        // Without a CPU path the GPU failure is the caller's.
        await Assert.ThrowsAsync<HeedNativeException>(() => resilience.ExecuteRequestAsync<int>(_ => throw new HeedNativeException("x"), null).AsTask());
        Assert.Equal(0, cpuCalls);
    }

    [Fact]
    public async Task TransientStoreIoIsRetriedWithBackoff()
    {
        using var resilience = Create(new HeedResilienceOptions { StoreRetryCount = 3, StoreRetryDelay = TimeSpan.FromMilliseconds(20) });
        int attempts = 0;
        var started = System.Diagnostics.Stopwatch.StartNew();
        int result = await resilience.ExecuteStoreAsync(_ =>
        {
            if (++attempts < 3)
            {
                throw new IOException("the index file is locked");
            }
            return ValueTask.FromResult(attempts);
        });
        Assert.Equal(3, result);
        Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(20), "two retries wait at least the first delay");
    }

    [Fact]
    public async Task StoreRetriesAreBoundedAndSkipMissingFiles()
    {
        using var resilience = Create(new HeedResilienceOptions { StoreRetryCount = 2, StoreRetryDelay = TimeSpan.FromMilliseconds(1) });
        int attempts = 0;
        await Assert.ThrowsAsync<IOException>(() => resilience.ExecuteStoreAsync<int>(_ => { attempts++; throw new IOException("disk"); }).AsTask());
        Assert.Equal(3, attempts);
        attempts = 0;
        await Assert.ThrowsAsync<FileNotFoundException>(() => resilience.ExecuteStoreAsync<int>(_ => { attempts++; throw new FileNotFoundException("gone"); }).AsTask());
        Assert.Equal(1, attempts);
        using var noRetries = Create(new HeedResilienceOptions { StoreRetryCount = 0 });
        attempts = 0;
        await Assert.ThrowsAsync<IOException>(() => noRetries.ExecuteStoreAsync<int>(_ => { attempts++; throw new IOException("disk"); }).AsTask());
        Assert.Equal(1, attempts);
        attempts = 0;
        await Assert.ThrowsAsync<HeedIndexCorruptException>(() => resilience.ExecuteStoreAsync<int>(_ =>
        {
            attempts++;
            throw new HeedIndexCorruptException("/tmp/index.heed", "bad checksum");
        }).AsTask());
        Assert.Equal(1, attempts);
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HeedResilience(new HeedResilienceOptions { RequestTimeout = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HeedResilience(new HeedResilienceOptions { MaxConcurrentRequests = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HeedResilience(new HeedResilienceOptions { MaxQueuedRequests = -1 }));
    }

    internal static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }
        Assert.True(condition(), "condition not reached in 5 s");
    }
}
