using System.Diagnostics;
using Heed.Attention;
using Heed.Llama;
using Heed.Ranking;

namespace Heed.Cli.Bench;

/// <summary>
/// Where one ICR call's time goes, stage by stage, on the prompts the RAG load bench reranks:
/// tokenising, the documents' decode with capture, the same decode on a plain context (the
/// difference is the capture), the two tail decodes, the aggregation kernel and the scoring in
/// C#. It follows <see cref="InContextReranker"/>'s steps through the public capture API, with a
/// given number of threads per context.
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
        var options = new InContextRerankerOptions();
        var contextOptions = new LlamaContextOptions
        {
            ContextSize = contextSize, BatchSize = Math.Min(512, contextSize), MicroBatchSize = Math.Min(512, contextSize), Threads = threads,
        };
        using var capture = new AttentionCapture(model, null, contextOptions, new AttentionCaptureOptions { StoreHalfPrecision = true });
        using LlamaContext plain = model.CreateContext(contextOptions);
        Tokenizer tokenizer = model.Tokenizer;
        double tokenize = 0, documents = 0, plainDecode = 0, tails = 0, aggregate = 0, score = 0, tokens = 0, windows = 0;
        var clock = new Stopwatch();
        foreach ((string query, string[] docs) in calls)
        {
            clock.Restart();
            int[] head = tokenizer.Tokenize(options.Instruction, addSpecial: true);
            string tail = $"\n\n{options.QueryInstruction}\n\nQuery: ";
            int[] calibration = tokenizer.Tokenize(tail + options.CalibrationQuery, addSpecial: false);
            int[] question = tokenizer.Tokenize(tail + query.Trim(), addSpecial: false);
            int shared = Math.Min(question.AsSpan().CommonPrefixLength(calibration), Math.Min(question.Length, calibration.Length) - 1);
            int room = contextSize - head.Length - Math.Max(calibration.Length, question.Length);
            // Documents packed into windows as the reranker packs them (its finalists' window, when
            // there are several, is one more window of the same kind and is not timed here).
            var prompts = new List<List<int>> { new(head) };
            for (int i = 0; i < docs.Length; i++)
            {
                int[] doc = tokenizer.Tokenize($"\n\n[{i + 1}] {docs[i].Trim()}", addSpecial: false);
                _ = tokenizer.Tokenize($"\n\n[{i + 1}]", addSpecial: false); // the reranker measures each delimiter too
                if (prompts[^1].Count - head.Length + doc.Length > room)
                {
                    prompts.Add(new List<int>(head));
                }
                prompts[^1].AddRange(doc.Take(room));
            }
            tokenize += clock.Elapsed.TotalMilliseconds;
            windows += prompts.Count;
            foreach (List<int> prompt in prompts)
            {
                tokens += prompt.Count;
                clock.Restart();
                plain.Clear();
                plain.Evaluate(prompt.ToArray());
                plainDecode += clock.Elapsed.TotalMilliseconds;

                clock.Restart();
                capture.Clear();
                capture.Evaluate(prompt.ToArray(), keepQueries: false, keepKeys: true);
                documents += clock.Elapsed.TotalMilliseconds;
                int tailStart = capture.NextPosition;
                foreach (int[] t in new[] { calibration, question })
                {
                    clock.Restart();
                    capture.Evaluate(t, keepQueries: true, keepKeys: true);
                    tails += clock.Elapsed.TotalMilliseconds;
                    double[] total = new double[tailStart];
                    foreach (int layer in capture.Layers)
                    {
                        clock.Restart();
                        float[] mass = capture.Aggregate(layer, tailStart + shared);
                        aggregate += clock.Elapsed.TotalMilliseconds;
                        clock.Restart();
                        int[] positions = capture.KeyPositions(layer);
                        for (int j = 0; j < positions.Length; j++)
                        {
                            if (positions[j] < tailStart)
                            {
                                total[positions[j]] += mass[j] / (t.Length - shared);
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
