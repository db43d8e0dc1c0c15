using System.Diagnostics;
using Heed.Attention;
using Heed.Llama;
using Heed.Ranking;

namespace Heed.Cli.Bench;

/// <summary>
/// Where one ICR call's time goes, stage by stage, on the prompts the RAG load bench reranks:
/// tokenising, the documents' decode with capture, the same decode on a plain context (the
/// difference is the capture), the two tail decodes, the aggregation kernel and the scoring in
/// C#. It takes <see cref="InContextReranker"/>'s steps on its own prompt and windows
/// (<see cref="RerankPrompt"/>), with a given number of threads per context.
/// </summary>
internal static class RerankProfile
{
    public sealed record Row(int Threads, int Calls, double Windows, double PromptTokens, double TokenizeMs, double DocumentsDecodeMs, double PlainDecodeMs,
        double TailDecodeMs, double AggregateMs, double ScoreMs)
    {
        public double TotalMs => TokenizeMs + DocumentsDecodeMs + TailDecodeMs + AggregateMs + ScoreMs;
    }

    public static Row Run(LlamaModel model, IReadOnlyList<(string Query, string[] Documents)> calls, int threads, int contextSize)
    {
        var options = new InContextRerankerOptions { ContextSize = contextSize };
        var contextOptions = new LlamaContextOptions
        {
            ContextSize = contextSize, BatchSize = Math.Min(512, contextSize), MicroBatchSize = Math.Min(512, contextSize), Threads = threads,
        };
        using var capture = new AttentionCapture(model, options.Layers, contextOptions,
            new AttentionCaptureOptions { StoreHalfPrecision = options.StoreHalfPrecision, ScoresOnly = true });
        using LlamaContext plain = model.CreateContext(contextOptions);
        double tokenize = 0, documents = 0, plainDecode = 0, tails = 0, aggregate = 0, score = 0, tokens = 0, windows = 0;
        var clock = new Stopwatch();
        foreach ((string query, string[] docs) in calls)
        {
            // The reranker's own prompt and windows (its finalists' window, when there are several,
            // is one more window of the same kind and is not timed here).
            clock.Restart();
            RerankPrompt prompt = RerankPrompt.Build(model, options, query, contextSize);
            List<RerankPrompt.Window> packed = prompt.Pack(docs, Enumerable.Range(0, docs.Length).ToArray());
            tokenize += clock.Elapsed.TotalMilliseconds;
            windows += packed.Count;
            foreach (RerankPrompt.Window window in packed)
            {
                tokens += window.Tokens.Length;
                clock.Restart();
                plain.Clear();
                plain.Evaluate(window.Tokens);
                plainDecode += clock.Elapsed.TotalMilliseconds;

                clock.Restart();
                capture.Clear();
                capture.Evaluate(window.Tokens, keepQueries: false, keepKeys: true);
                documents += clock.Elapsed.TotalMilliseconds;
                int tailStart = capture.NextPosition;
                foreach (RerankPrompt.Tail tail in new[] { prompt.Calibration, prompt.Query })
                {
                    clock.Restart();
                    capture.Evaluate(tail.Tokens, keepQueries: true, keepKeys: true);
                    tails += clock.Elapsed.TotalMilliseconds;
                    double[] total = new double[tailStart];
                    foreach (int layer in capture.Layers)
                    {
                        clock.Restart();
                        float[] mass = capture.Aggregate(layer, tailStart + tail.RowsStart, -1, options.Device);
                        aggregate += clock.Elapsed.TotalMilliseconds;
                        clock.Restart();
                        int[] positions = capture.KeyPositions(layer);
                        for (int j = 0; j < positions.Length; j++)
                        {
                            if (positions[j] < tailStart)
                            {
                                total[positions[j]] += mass[j] / tail.Rows;
                            }
                        }
                        score += clock.Elapsed.TotalMilliseconds;
                    }
                    capture.RemoveTokens(tailStart);
                }
            }
        }
        int n = calls.Count;
        return new Row(threads, n, windows / n, tokens / n, tokenize / n, documents / n, plainDecode / n, tails / n, aggregate / n, score / n);
    }
}
