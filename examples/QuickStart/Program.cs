// Heed quick start: load a GGUF model, rank passages by the model's attention (ICR), and find a
// pass key in a text far longer than the context (InfiniRetri). Runs the same as a JIT app, a
// trimmed self-contained app, or a NativeAOT binary (dotnet publish -p:PublishAot=true).
//   dotnet run -- path/to/model.gguf
using System.Diagnostics;
using Heed.Attention;
using Heed.Llama;
using Heed.Ranking;
using Heed.Retrieval;
using Microsoft.Extensions.Logging;

var clock = Stopwatch.StartNew();
string path = args.Length > 0 ? args[0] : "models/heed-tiny.gguf";

// ggml says which backend files it loaded (e.g. the CPU variant for this processor).
LlamaBackend.Logger = new BackendLoadLogger();
bool gpu = LlamaBackend.HasGpu;
Console.WriteLine($"backend: {(gpu ? "CUDA" : "CPU")} ({string.Join(", ", LlamaBackend.Devices.Select(d => $"{d.Name}: {d.Description}"))})");
AttentionDevice attentionDevice = gpu ? AttentionDevice.Cuda : AttentionDevice.Cpu;

using LlamaModel model = await LlamaModel.LoadAsync(path);
Console.WriteLine($"{model.Description}: {model.LayerCount} layers, context {model.TrainedContextLength}; loaded in {clock.ElapsedMilliseconds} ms");

string[] passages =
[
    "The apt-get command installs packages from the configured sources and resolves their dependencies.",
    "Cron runs scheduled jobs; each line of a crontab gives the minute, hour, day, month and weekday.",
    "The pass key of the staging server is 48213; keep it out of the repository.",
    "The ssh client reads its per-user configuration from ~/.ssh/config before the system-wide file.",
    "Log files rotate weekly; logrotate compresses the old ones and keeps four of them.",
];
using (var reranker = new InContextReranker(model, new InContextRerankerOptions { ContextSize = 1024, Device = attentionDevice }))
{
    IReadOnlyList<RankedDocument> ranked = await reranker.RerankAsync("What is the pass key of the staging server?", passages);
    Console.WriteLine($"ICR on {attentionDevice}: top passage [{ranked[0].Index}] {ranked[0].Text}");
}

var haystack = new System.Text.StringBuilder();
for (int i = 0; i < 260; i++)
{
    haystack.Append("The package manager keeps track of installed files. The manual page lists the options of each command. ");
    if (i == 90)
    {
        haystack.Append("The pass key is 71432. Remember it. 71432 is the pass key. ");
    }
}
using (var retriever = new InfiniteRetriever(model, new InfiniteRetrieverOptions { ContextSize = 1024, Device = attentionDevice }))
{
    RetrievalResult found = await retriever.RetrieveAsync("What is the pass key?", haystack.ToString());
    Evidence best = found.Evidence.MaxBy(e => e.Score)!;
    Console.WriteLine($"InfiniRetri read {found.TokensProcessed} tokens in {found.ChunksProcessed} chunks; best evidence: {best.Text.Trim()}");
}
Console.WriteLine($"done in {clock.ElapsedMilliseconds} ms");

/// <summary>Prints ggml's "loaded ... backend from ..." lines and any error it logs.</summary>
internal sealed class BackendLoadLogger : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        string line = formatter(state, exception);
        if (logLevel >= LogLevel.Warning || line.Contains("backend from", StringComparison.Ordinal))
        {
            Console.WriteLine(line);
        }
    }
}
