using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Heed.Cli.Bench;
using Heed.Llama;
using Heed.Ranking;
using Heed.Retrieval;
using Spectre.Console;
using Heed.Search;

namespace Heed.Cli.Commands;

/// <summary>
/// `heed bench …`: benchmark programs. Every figure is measured in the same run as its peer
/// and printed next to it as a ratio.
/// </summary>
internal static class BenchCommand
{
    public static Command Create() => new("bench", "Benchmarks: ours against a peer measured in the same run")
    {
        Rerank(),
        Needle(),
        Kernels(),
        Rag(),
    };

    private static Command Rag()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        var requests = new Option<int>("--requests") { Description = "Concurrent search requests", DefaultValueFactory = _ => 200 };
        var documents = new Option<int>("--documents") { Description = "Files in the knowledge base", DefaultValueFactory = _ => 100 };
        var candidates = new Option<int>("--candidates") { Description = "Candidates re-ranked per search", DefaultValueFactory = _ => 8 };
        var contextSize = new Option<int>("--context") { Description = "ICR context tokens", DefaultValueFactory = _ => 1024 };
        var command = new Command("rag", "Concurrent searches against one knowledge base and model: all answered, p50/p95")
        {
            model, requests, documents, candidates, contextSize, gpuLayers,
        };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            int n = Positive(parse.GetValue(requests), "--requests");
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), false, ct);
            IReadOnlyList<RagLoadBench.Result> results = await RagLoadBench.RunAsync(m, n, Positive(parse.GetValue(documents), "--documents"),
                Positive(parse.GetValue(candidates), "--candidates"), parse.GetValue(contextSize), ct);
            var table = new Table().AddColumn("search").AddColumn("answered").AddColumn("p50 ms").AddColumn("p95 ms").AddColumn("max ms").AddColumn("requests/s");
            foreach (RagLoadBench.Result r in results)
            {
                table.AddRow(r.Mode, $"{r.Answered}/{r.Requests}", r.P50Ms.ToString("F1"), r.P95Ms.ToString("F1"), r.MaxMs.ToString("F1"), (r.Requests / r.Seconds).ToString("F1"));
            }
            AnsiConsole.MarkupLine($"[bold]rag[/]: {n} concurrent searches, {Markup.Escape(m.Description)}");
            AnsiConsole.Write(table);
            return results.All(r => r.Answered == r.Requests) ? 0 : 1;
        }));
        return command;
    }

    private static Command Kernels()
    {
        var threads = new Option<int>("--threads") { Description = "Threads of the fast path (0: all cores)", DefaultValueFactory = _ => 0 };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per path (median reported)", DefaultValueFactory = _ => 5 };
        var command = new Command("kernels", "Each CPU kernel's fast path vs its reference path, same inputs, same run") { threads, repeats };
        command.SetAction((parse, ct) => CliErrors.RunAsync(() =>
        {
            Heed.Llama.LlamaBackend.EnsureInitialized();
            IReadOnlyList<KernelBench.Row> rows = KernelBench.Run(parse.GetValue(threads), Positive(parse.GetValue(repeats), "--repeats"));
            var table = new Table().AddColumn("kernel").AddColumn("shape").AddColumn("reference ms").AddColumn("fast ms").AddColumn("speed-up");
            foreach (KernelBench.Row r in rows)
            {
                table.AddRow(r.Kernel, Markup.Escape(r.Shape), r.ReferenceMs.ToString("F2"), r.FastMs.ToString("F2"), $"{r.ReferenceMs / r.FastMs:F1}x");
            }
            AnsiConsole.MarkupLine($"[bold]kernels[/]: CPU, {Environment.ProcessorCount} cores, fast path threads {(parse.GetValue(threads) == 0 ? "all" : parse.GetValue(threads))}");
            AnsiConsole.Write(table);
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command Rerank()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        var cases = new Option<int>("--cases") { Description = "Queries", DefaultValueFactory = _ => 20 };
        var passages = new Option<int>("--passages") { Description = "Passages per query", DefaultValueFactory = _ => 10 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var contextSize = new Option<int>("--context") { Description = "Context tokens (0: the model's)", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Also print the figures as JSON" };
        var command = new Command("rerank", "ICR vs the generative listwise baseline (and BM25, random) on a synthetic set")
        {
            model, cases, passages, seed, contextSize, gpuLayers, json,
        };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            int n = Positive(parse.GetValue(cases), "--cases"), p = Positive(parse.GetValue(passages), "--passages");
            IReadOnlyList<RerankSet.Case> set = RerankSet.Build(n, p, parse.GetValue(seed));
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), false, ct);
            int context = parse.GetValue(contextSize) > 0 ? parse.GetValue(contextSize) : m.TrainedContextLength;
            using var icr = new InContextReranker(m, new InContextRerankerOptions { ContextSize = context });
            using var listwise = new ListwiseReranker(m, context);
            var random = new Random(parse.GetValue(seed));
            var scores = new Dictionary<string, (double Ndcg, int Top1, double Ms)>
            {
                ["ICR"] = default, ["listwise"] = default, ["BM25"] = default, ["random"] = default,
            };
            int agreeTop1 = 0;
            double tau = 0;
            await AnsiConsole.Progress().StartAsync(async ctx =>
            {
                ProgressTask task = ctx.AddTask("ranking", maxValue: n);
                foreach (RerankSet.Case c in set)
                {
                    var clock = Stopwatch.StartNew();
                    int[] icrOrder = (await icr.RerankAsync(c.Query, c.Passages, null, ct)).Select(r => r.Index).ToArray();
                    double icrMs = clock.Elapsed.TotalMilliseconds;
                    clock.Restart();
                    int[] listOrder = (await listwise.RankAsync(c.Query, c.Passages, ct)).ToArray();
                    double listMs = clock.Elapsed.TotalMilliseconds;
                    clock.Restart();
                    int[] bm25Order = new Bm25Index(c.Passages).Search(c.Query, c.Passages.Count).Select(h => h.Document).ToArray();
                    bm25Order = [.. bm25Order, .. Enumerable.Range(0, c.Passages.Count).Except(bm25Order)];
                    double bm25Ms = clock.Elapsed.TotalMilliseconds;
                    int[] randomOrder = Enumerable.Range(0, c.Passages.Count).OrderBy(_ => random.Next()).ToArray();
                    Add("ICR", icrOrder, icrMs);
                    Add("listwise", listOrder, listMs);
                    Add("BM25", bm25Order, bm25Ms);
                    Add("random", randomOrder, 0);
                    agreeTop1 += icrOrder[0] == listOrder[0] ? 1 : 0;
                    tau += KendallTau(icrOrder, listOrder);
                    task.Increment(1);

                    void Add(string name, int[] order, double ms)
                    {
                        var s = scores[name];
                        scores[name] = (s.Ndcg + RerankSet.Ndcg(order, c.Relevant, 10), s.Top1 + (order[0] == c.Relevant ? 1 : 0), s.Ms + ms);
                    }
                }
            });
            double icrMean = scores["ICR"].Ms / n;
            var table = new Table().AddColumn("method").AddColumn("nDCG@10").AddColumn("top-1").AddColumn("ms / query").AddColumn("time vs ICR");
            foreach ((string name, var s) in scores)
            {
                double ms = s.Ms / n;
                table.AddRow(name, (s.Ndcg / n).ToString("F3"), $"{100.0 * s.Top1 / n:F0}%", name == "random" ? "-" : ms.ToString("F1"),
                    name is "random" ? "-" : $"{ms / icrMean:F2}x");
            }
            AnsiConsole.MarkupLine($"[bold]rerank[/]: {n} queries x {p} passages, {Markup.Escape(m.Description)}, context {context}, " +
                                   $"{(parse.GetValue(gpuLayers) != 0 && LlamaBackend.HasGpu ? "GPU" : "CPU")}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"ICR vs listwise: top-1 agreement {100.0 * agreeTop1 / n:F0}%, mean Kendall tau {tau / n:F2}; " +
                                   $"listwise/ICR latency ratio {scores["listwise"].Ms / scores["ICR"].Ms:F2}");
            if (parse.GetValue(json))
            {
                var byPeer = new JsonObject();
                foreach ((string peer, var score) in scores)
                {
                    byPeer[peer] = new JsonObject { ["ndcg10"] = score.Ndcg / n, ["top1"] = (double)score.Top1 / n, ["ms"] = score.Ms / n };
                }
                Console.WriteLine(byPeer.ToJsonString());
            }
            return 0;
        }));
        return command;
    }

    private static Command Needle()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        var lengths = new Option<string>("--lengths") { Description = "Document lengths in tokens, comma separated", DefaultValueFactory = _ => "4096,16384" };
        var depths = new Option<string>("--depths") { Description = "Needle depths in [0,1], comma separated", DefaultValueFactory = _ => "0.1,0.3,0.5,0.7,0.9" };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var contextSize = new Option<int>("--context") { Description = "Context tokens (0: the model's)", DefaultValueFactory = _ => 0 };
        var skipBaseline = new Option<bool>("--no-baseline") { Description = "Skip the truncation baseline" };
        var topK = new Option<int>("--top-k") { Description = "InfiniRetri: tokens ranked per chunk", DefaultValueFactory = _ => new InfiniteRetrieverOptions().TopKTokens };
        var cacheTokens = new Option<int>("--cache-tokens") { Description = "InfiniRetri: cache budget (0: a quarter of the context)", DefaultValueFactory = _ => 0 };
        var layer = new Option<int>("--layer") { Description = "InfiniRetri: scoring layer (-1: probed)", DefaultValueFactory = _ => -1 };
        var command = new Command("needle", "InfiniRetri vs truncation to the context on a passkey grid (lengths x depths)")
        {
            model, lengths, depths, seed, contextSize, skipBaseline, topK, cacheTokens, layer, gpuLayers,
        };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            int[] tokenLengths = ParseList(parse.GetValue(lengths)!, int.Parse, "--lengths");
            double[] depthList = ParseList(parse.GetValue(depths)!, s => double.Parse(s, System.Globalization.CultureInfo.InvariantCulture), "--depths");
            if (tokenLengths.Any(l => l < 256) || depthList.Any(d => d is < 0 or > 1))
            {
                throw new ArgumentException("Lengths must be at least 256 tokens and depths within [0, 1].");
            }
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), false, ct);
            int context = parse.GetValue(contextSize) > 0 ? parse.GetValue(contextSize) : m.TrainedContextLength;
            using var retriever = new InfiniteRetriever(m, new InfiniteRetrieverOptions
            {
                ContextSize = context, TopKTokens = parse.GetValue(topK), CacheTokens = parse.GetValue(cacheTokens), Layer = parse.GetValue(layer),
            });
            using LlamaContext plain = m.CreateContext(new LlamaContextOptions { ContextSize = context });
            string sample = Haystack.Build(20_000, 0.5, 12345, 0);
            double charsPerToken = (double)sample.Length / m.Tokenizer.CountTokens(sample);
            var random = new Random(parse.GetValue(seed));
            var rows = new List<(int Length, int InfiniHits, int TruncHits, double InfiniTps, double TruncTps, int Cells)>();
            await AnsiConsole.Progress().StartAsync(async ctx =>
            {
                ProgressTask task = ctx.AddTask("needles", maxValue: tokenLengths.Length * depthList.Length);
                foreach (int length in tokenLengths)
                {
                    int infiniHits = 0, truncHits = 0;
                    double infiniSeconds = 0, truncSeconds = 0, tokens = 0;
                    foreach (double depth in depthList)
                    {
                        int key = random.Next(10_000, 100_000);
                        string document = Haystack.Build((int)(length * charsPerToken), depth, key, random.Next());
                        tokens += length;
                        var clock = Stopwatch.StartNew();
                        RetrievalResult found = await retriever.RetrieveAsync(Haystack.Question, document, null, ct);
                        string answer = await retriever.AnswerFromEvidenceAsync(Haystack.Question, found, ct);
                        infiniSeconds += clock.Elapsed.TotalSeconds;
                        infiniHits += answer.Contains(key.ToString()) ? 1 : 0;
                        if (!parse.GetValue(skipBaseline))
                        {
                            clock.Restart();
                            truncHits += (await Truncated(plain, m, document, context, ct)).Contains(key.ToString()) ? 1 : 0;
                            truncSeconds += clock.Elapsed.TotalSeconds;
                        }
                        task.Increment(1);
                    }
                    rows.Add((length, infiniHits, truncHits, tokens / infiniSeconds, truncSeconds > 0 ? tokens / truncSeconds : 0, depthList.Length));
                }
            });
            AnsiConsole.MarkupLine($"[bold]needle[/]: {Markup.Escape(m.Description)}, context {context}, layer {retriever.Layer}, depths {string.Join(",", depthList)}, " +
                                   $"{(parse.GetValue(gpuLayers) != 0 && LlamaBackend.HasGpu ? "GPU" : "CPU")}");
            var table = new Table().AddColumn("tokens").AddColumn("InfiniRetri").AddColumn("truncation").AddColumn("InfiniRetri tok/s").AddColumn("truncation tok/s");
            foreach (var r in rows)
            {
                table.AddRow($"{r.Length:N0}", $"{100.0 * r.InfiniHits / r.Cells:F0}%",
                    parse.GetValue(skipBaseline) ? "-" : $"{100.0 * r.TruncHits / r.Cells:F0}%",
                    $"{r.InfiniTps:N0}", parse.GetValue(skipBaseline) ? "-" : $"{r.TruncTps:N0}");
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    // The baseline: keep the document's first tokens that fit, then ask.
    private static async Task<string> Truncated(LlamaContext context, LlamaModel model, string document, int contextSize, CancellationToken ct)
    {
        int[] question = model.Tokenizer.Tokenize($"\nQuestion: {Haystack.Question}\nAnswer:", addSpecial: false);
        int[] doc = model.Tokenizer.Tokenize(document);
        int keep = Math.Max(1, contextSize - question.Length - 24);
        int[] prompt = [.. doc.Take(keep), .. question];
        var answer = new List<int>();
        await foreach (int token in context.GenerateTokensAsync(prompt, new GenerationOptions { MaxTokens = 16 }, ct))
        {
            answer.Add(token);
        }
        return model.Tokenizer.Detokenize([.. answer]);
    }

    private static T[] ParseList<T>(string text, Func<string, T> parse, string option)
    {
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(parse).ToArray();
        }
        catch (FormatException)
        {
            throw new ArgumentException($"{option} must be a comma-separated list of numbers, got '{text}'.");
        }
    }

    private static int Positive(int value, string option) =>
        value > 0 ? value : throw new ArgumentException($"{option} must be positive, got {value}.");

    private static double KendallTau(int[] a, int[] b)
    {
        int n = a.Length;
        int[] rankB = new int[n];
        for (int i = 0; i < n; i++)
        {
            rankB[b[i]] = i;
        }
        int concordant = 0, discordant = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                if (rankB[a[i]] < rankB[a[j]])
                {
                    concordant++;
                }
                else
                {
                    discordant++;
                }
            }
        }
        return n < 2 ? 1 : (double)(concordant - discordant) / (n * (n - 1) / 2);
    }
}
