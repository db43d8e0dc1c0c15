using System.Runtime.CompilerServices;
using Heed.Hosting;
using Heed.Llama;

namespace Heed.Tests.Hosting;

/// <summary>GPU faults are injected into work running on the primary pool; the CPU pool must take over.</summary>
[Collection(TinyModelCollection.Name)]
public sealed class LlamaInferenceTests(TinyModelFixture fixture)
{
    private readonly LlamaContextOptions _contextOptions = new() { ContextSize = 64, Threads = 1 };

    private (LlamaInference Inference, LlamaContextPool Gpu, LlamaContextPool Cpu, HeedResilience Resilience) Create()
    {
        var gpu = new LlamaContextPool(fixture.Model, _contextOptions, 1, "fake-gpu");
        var cpu = new LlamaContextPool(fixture.Model, _contextOptions, 1, "cpu");
        var resilience = new HeedResilience(new HeedResilienceOptions { MaxConcurrentRequests = 1 });
        return (new LlamaInference(gpu, _ => ValueTask.FromResult(cpu), resilience), gpu, cpu, resilience);
    }

    [Fact]
    public async Task GpuFailureRunsTheWorkOnTheCpuPoolAndDropsTheBrokenContext()
    {
        (LlamaInference inference, LlamaContextPool gpu, LlamaContextPool cpu, HeedResilience resilience) = Create();
        using (inference) using (gpu) using (cpu) using (resilience)
        {
            var gpuContexts = new HashSet<LlamaContext>();
            string result = await inference.RunAsync((context, _) =>
            {
                if (gpuContexts.Count == 0)
                {
                    gpuContexts.Add(context);
                    throw new HeedNativeException("ggml_cuda_error: out of memory");
                }
                Assert.DoesNotContain(context, gpuContexts);
                return Task.FromResult("answered");
            });
            Assert.Equal("answered", result);
            Assert.Equal(1, gpu.Created);
            Assert.Equal(1, cpu.Created);
            // The failed GPU context was freed, not reused: the next GPU lease makes a new one.
            await inference.RunAsync((context, _) => Task.FromResult(context));
            Assert.Equal(2, gpu.Created);
        }
    }

    [Fact]
    public async Task StreamFallsBackBeforeItsFirstItemOnly()
    {
        (LlamaInference inference, LlamaContextPool gpu, LlamaContextPool cpu, HeedResilience resilience) = Create();
        using (inference) using (gpu) using (cpu) using (resilience)
        {
            int calls = 0;
            async IAsyncEnumerable<int> FailFirst(LlamaContext context, [EnumeratorCancellation] CancellationToken token)
            {
                await Task.Yield();
                if (Interlocked.Increment(ref calls) == 1)
                {
                    throw new OutOfMemoryException("GPU out of memory");
                }
                yield return 1;
                yield return 2;
            }
            var items = new List<int>();
            await foreach (int item in inference.StreamAsync(FailFirst))
            {
                items.Add(item);
            }
            Assert.Equal([1, 2], items);
            Assert.Equal(1, cpu.Created);

            async IAsyncEnumerable<int> FailLate(LlamaContext context, [EnumeratorCancellation] CancellationToken token)
            {
                yield return 7;
                await Task.Yield();
                throw new HeedNativeException("failed after output");
            }
            var seen = new List<int>();
            await Assert.ThrowsAsync<HeedNativeException>(async () =>
            {
                await foreach (int item in inference.StreamAsync(FailLate))
                {
                    seen.Add(item);
                }
            });
            Assert.Equal([7], seen);
            Assert.Equal(0, gpu.InUse + cpu.InUse);
        }
    }

    [Fact]
    public async Task StoppingAStreamEarlyGivesTheContextBack()
    {
        using LlamaInference inference = LlamaInference.ForModel(fixture.Model, _contextOptions, 1);
        async IAsyncEnumerable<int> Endless(LlamaContext context, [EnumeratorCancellation] CancellationToken token)
        {
            for (int i = 0; ; i++)
            {
                await Task.Delay(1, token);
                yield return i;
            }
        }
        await foreach (int item in inference.StreamAsync(Endless))
        {
            if (item == 3)
            {
                break;
            }
        }
        Assert.Equal(0, inference.Pool.InUse);
    }
}
