using System.Diagnostics;
using Heed.Attention;
using Heed.Llama;
using Heed.Retrieval;

namespace Heed.Cli.Bench;

/// <summary>
/// What attention capture costs: the same held-out prose read three ways in one run. Plain
/// prefill tokenizes the text and decodes it window by window into a context without capture (how
/// truncation reads, repeated until the text ends); InfiniRetri reads it with every layer of each
/// pass computed, and again stopping each pass at the scoring layer (its default). Each path
/// runs once on a short text first, untimed, so start-up costs stay out of the figures.
/// </summary>
internal sealed class CaptureBench(LlamaModel model, int contextSize, int layer, AttentionDevice device)
{
    public const string Prefill = "plain prefill (no capture)", FullGraph = "InfiniRetri, every layer", ScoresOnly = "InfiniRetri, stop at scoring layer";

    /// <summary>One path's median run: seconds to read the text, passes made, and (InfiniRetri) the evidence kept.</summary>
    public sealed record Row(string Path, double Seconds, int Passes, IReadOnlyList<Evidence>? Evidence);

    // Any question will do: the cost of reading does not depend on what is asked.
    private const string Question = "Which town was the bridge built in, and when?";

    /// <summary>
    /// Held-out paragraphs from the first on, cycled, joined by blank lines, until the text holds
    /// about <paramref name="tokens"/> tokens (counted on a sample, as the needle bench does).
    /// </summary>
    public static string BuildText(LlamaModel model, IReadOnlyList<string> prose, long tokens)
    {
        string sample = string.Join("\n\n", prose.Take(400));
        double charsPerToken = (double)sample.Length / model.Tokenizer.CountTokens(sample);
        long chars = (long)(tokens * charsPerToken);
        var text = new System.Text.StringBuilder();
        for (int i = 0; text.Length < chars; i = (i + 1) % prose.Count)
        {
            text.Append(prose[i]).Append("\n\n");
        }
        return text.ToString();
    }

    public async Task<IReadOnlyList<Row>> RunAsync(string text, string warmUpText, int repeats, CancellationToken cancellationToken)
    {
        using var reader = model.CreateContext(new LlamaContextOptions { ContextSize = contextSize });
        using var everyLayer = new InfiniteRetriever(model, Options(stop: false));
        using var scoringLayerOnly = new InfiniteRetriever(model, Options(stop: true));
        var paths = new (string Name, Func<string, Task<Row>> Read)[]
        {
            (Prefill, t => Task.FromResult(PrefillRead(reader, t, cancellationToken))),
            (FullGraph, t => InfiniRetriRead(FullGraph, everyLayer, t, cancellationToken)),
            (ScoresOnly, t => InfiniRetriRead(ScoresOnly, scoringLayerOnly, t, cancellationToken)),
        };
        foreach (var path in paths)
        {
            await path.Read(warmUpText);
        }
        // Paths take turns, so that a change in the machine's load falls on all of them; the median run counts.
        var runs = paths.ToDictionary(p => p.Name, _ => new List<Row>());
        for (int r = 0; r < repeats; r++)
        {
            foreach (var path in paths)
            {
                Row row = await path.Read(text);
                runs[path.Name].Add(row);
                Console.Error.WriteLine($"capture: run {r + 1}/{repeats}, {path.Name}: {row.Seconds:F2} s, {row.Passes} passes");
            }
        }
        return paths.Select(p => runs[p.Name].OrderBy(row => row.Seconds).ElementAt(repeats / 2)).ToList();
    }

    private InfiniteRetrieverOptions Options(bool stop) =>
        new() { ContextSize = contextSize, Layer = layer, StopAtScoringLayer = stop, Device = device };

    /// <summary>Tokens of the text as plain prefill reads it (one tokenization of the whole text): the figure every path's tokens/s is counted in.</summary>
    public int CountTokens(string text) => model.Tokenizer.Tokenize(text, addSpecial: false).Length;

    // Tokenize the whole text, then decode it in context-sized windows, each after BOS on an empty cache.
    private Row PrefillRead(LlamaContext context, string text, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        int[] tokens = model.Tokenizer.Tokenize(text, addSpecial: false);
        int window = contextSize - 1, windows = 0;
        int[] buffer = new int[contextSize];
        buffer[0] = model.Tokenizer.BeginningOfSequence;
        for (int start = 0; start < tokens.Length; start += window)
        {
            int n = Math.Min(window, tokens.Length - start);
            tokens.AsSpan(start, n).CopyTo(buffer.AsSpan(1));
            context.Clear();
            context.Evaluate(buffer.AsSpan(0, n + 1), cancellationToken: cancellationToken);
            windows++;
        }
        return new Row(Prefill, clock.Elapsed.TotalSeconds, windows, null);
    }

    private static async Task<Row> InfiniRetriRead(string name, InfiniteRetriever retriever, string text, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        RetrievalResult result = await retriever.RetrieveAsync(Question, text, null, cancellationToken);
        return new Row(name, clock.Elapsed.TotalSeconds, result.ChunksProcessed, result.Evidence);
    }

    /// <summary>The layer both InfiniRetri paths score at: the given one, or the probe's choice (as InfiniteRetriever makes it).</summary>
    public static int ScoringLayer(LlamaModel model, int contextSize, int layer)
    {
        if (layer >= 0)
        {
            return layer;
        }
        using var probed = new InfiniteRetriever(model, new InfiniteRetrieverOptions { ContextSize = contextSize });
        return probed.Layer;
    }
}
