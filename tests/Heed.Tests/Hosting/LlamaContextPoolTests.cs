using Heed.Hosting;
using Heed.Llama;

namespace Heed.Tests.Hosting;

[Collection(TinyModelCollection.Name)]
public sealed class LlamaContextPoolTests(TinyModelFixture fixture)
{
    private LlamaContextPool Pool(int size) => new(fixture.Model, new LlamaContextOptions { ContextSize = 64, Threads = 1 }, size, "test-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task LeasesAreBoundedReusedAndCleared()
    {
        using LlamaContextPool pool = Pool(2);
        LlamaContextLease a = await pool.RentAsync();
        LlamaContextLease b = await pool.RentAsync();
        Assert.NotSame(a.Context, b.Context);
        a.Context.Evaluate(fixture.Model.Tokenizer.Tokenize("the pass key"));
        Assert.True(a.Context.NextPosition() > 0);

        ValueTask<LlamaContextLease> waiting = pool.RentAsync();
        await HeedResilienceTests.WaitUntil(() => pool.Waiters == 1);
        Assert.False(waiting.IsCompleted);
        LlamaContext reused = a.Context;
        a.Dispose();
        a.Dispose(); // a second dispose must not give the context back twice
        using LlamaContextLease c = await waiting;
        Assert.Same(reused, c.Context);
        Assert.Equal(0, c.Context.NextPosition());
        Assert.Equal(2, pool.Created);
        Assert.Equal(2, pool.InUse);
        b.Dispose();
        Assert.Equal(1, pool.InUse);
    }

    [Fact]
    public async Task WaitingIsCancellable()
    {
        using LlamaContextPool pool = Pool(1);
        using LlamaContextLease held = await pool.RentAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pool.RentAsync(cts.Token).AsTask());
        Assert.Equal(0, pool.Waiters);
        Assert.Equal(1, pool.InUse);
    }

    [Fact]
    public async Task DiscardedContextIsReplaced()
    {
        using LlamaContextPool pool = Pool(1);
        LlamaContext first;
        using (LlamaContextLease lease = await pool.RentAsync())
        {
            first = lease.Context;
            lease.Discard();
        }
        Assert.Throws<ObjectDisposedException>(() => first.NextPosition());
        using LlamaContextLease next = await pool.RentAsync();
        Assert.NotSame(first, next.Context);
        Assert.Equal(2, pool.Created);
    }

    [Fact]
    public async Task FailingFactoryGivesThePermitBack()
    {
        int calls = 0;
        using var pool = new LlamaContextPool(_ => ++calls == 1
            ? throw new HeedNativeException("no memory for the KV cache")
            : ValueTask.FromResult(fixture.Model.CreateContext(new LlamaContextOptions { ContextSize = 64 })), 1);
        await Assert.ThrowsAsync<HeedNativeException>(() => pool.RentAsync().AsTask());
        using LlamaContextLease lease = await pool.RentAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1, pool.InUse);
    }

    [Fact]
    public void SizeIsChecked()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Pool(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Pool(257));
    }
}
