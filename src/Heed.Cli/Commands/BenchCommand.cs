using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Heed.Attention;
using Heed.Cli.Bench;
using Heed.Llama;
using Heed.Retrieval;
using Spectre.Console;

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
        Capture(),
    };

    private static Command Capture()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<string> split = Split();
        Option<DirectoryInfo?> data = Data();
        var tokens = new Option<int>("--tokens") { Description = "Tokens of held-out prose to read", DefaultValueFactory = _ => 32768 };
        var contextSize = new Option<int>("--context") { Description = "Context tokens (0: the model's)", DefaultValueFactory = _ => 0 };
        var layer = new Option<int>("--layer") { Description = "InfiniRetri: scoring layer (-1: probed)", DefaultValueFactory = _ => -1 };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per path, taking turns (median reported)", DefaultValueFactory = _ => 1 };
        var aggregateOn = new Option<string>("--aggregate-on") { Description = "InfiniRetri's aggregation: cpu or cuda", DefaultValueFactory = _ => "cpu" };
        var command = new Command("capture",
            "What attention capture costs: held-out prose read by plain prefill (no capture) and by InfiniRetri " +
            "(every layer, and stopping at the scoring layer), tokens/s side by side")
        {
            model, split, data, tokens, contextSize, layer, repeats, aggregateOn, gpuLayers,
        };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            int n = Positive(parse.GetValue(tokens), "--tokens");
            int runs = Positive(parse.GetValue(repeats), "--repeats");
            AttentionDevice device = parse.GetValue(aggregateOn) switch
            {
                "cpu" => AttentionDevice.Cpu,
                "cuda" => AttentionDevice.Cuda,
                var other => throw new ArgumentException($"--aggregate-on must be cpu or cuda, got '{other}'."),
            };
            IReadOnlyList<string> prose = HeldOutData.Open(parse.GetValue(data), parse.GetValue(split)!).LoadParagraphs();
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), false, ct);
            int context = parse.GetValue(contextSize) > 0 ? parse.GetValue(contextSize) : m.TrainedContextLength;
            if (parse.GetValue(layer) < -1 || parse.GetValue(layer) >= m.LayerCount)
            {
                throw new ArgumentException($"--layer must be -1 (probed) or in [0, {m.LayerCount}), got {parse.GetValue(layer)}.");
            }
            int scoringLayer = CaptureBench.ScoringLayer(m, context, parse.GetValue(layer));
            var bench = new CaptureBench(m, context, scoringLayer, device);
            string text = CaptureBench.BuildText(m, prose, n);
            string warmUp = CaptureBench.BuildText(m, prose, Math.Min(n, 3 * context));
            long documentTokens = bench.CountTokens(text);
            string loadBefore = LoadAverage();
            IReadOnlyList<CaptureBench.Row> rows = await bench.RunAsync(text, warmUp, runs, ct);
            double prefillRate = documentTokens / rows[0].Seconds;
            var table = new Table().AddColumn("path").AddColumn("passes").AddColumn("seconds").AddColumn("tokens/s").AddColumn("vs plain prefill");
            foreach (CaptureBench.Row r in rows)
            {
                double rate = documentTokens / r.Seconds;
                table.AddRow(Markup.Escape(r.Path), r.Passes.ToString(), r.Seconds.ToString("F2"), rate.ToString("N0"), $"{rate / prefillRate:P1}");
            }
            AnsiConsole.MarkupLine($"[bold]capture[/]: {Markup.Escape(CommandLine())}");
            AnsiConsole.MarkupLine($"{documentTokens:N0} tokens of held-out prose ({parse.GetValue(split)} split), {Markup.Escape(ModelLabel(m))}, " +
                                   $"{m.LayerCount} layers, context {context}, InfiniRetri layer {scoringLayer}, aggregation on {parse.GetValue(aggregateOn)}, " +
                                   $"{Device(parse.GetValue(gpuLayers))}, median of {runs}");
            AnsiConsole.Write(table);
            // Stopping must not change what InfiniRetri finds: the same sentences with the same scores.
            IReadOnlyList<Evidence> every = rows[1].Evidence!, stopped = rows[2].Evidence!;
            bool same = every.Select(e => e.Offset).SequenceEqual(stopped.Select(e => e.Offset));
            double scoreDifference = same ? every.Zip(stopped, (a, b) => Math.Abs(a.Score - b.Score)).DefaultIfEmpty().Max() : double.NaN;
            AnsiConsole.MarkupLine($"InfiniRetri evidence, every layer vs stopped: {(same ? "the same" : "[red]different[/]")} {stopped.Count} sentences, " +
                                   $"largest score difference {scoreDifference:G3}");
            AnsiConsole.MarkupLine($"{Environment.ProcessorCount} cores; load average (1, 5, 15 min) before {loadBefore}, after {LoadAverage()}");
            return same ? 0 : 1;
        }));
        return command;
    }

    private static Command Rag()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        var requests = new Option<int>("--requests") { Description = "Search requests at each concurrency level", DefaultValueFactory = _ => 200 };
        var documents = new Option<int>("--documents") { Description = "Files in the knowledge base", DefaultValueFactory = _ => 100 };
        var candidates = new Option<int>("--candidates") { Description = "Candidates re-ranked per search", DefaultValueFactory = _ => 8 };
        var contextSize = new Option<int>("--context") { Description = "ICR context tokens", DefaultValueFactory = _ => 1024 };
        var postgres = new Option<string?>("--postgres") { Description = "Instead: PostgreSQL against the embedded index at --chunks chunks (a connection string)" };
        var chunks = new Option<int>("--chunks") { Description = "Chunks in the knowledge base, with --postgres", DefaultValueFactory = _ => 10_000 };
        var rerankRequests = new Option<int>("--rerank-requests") { Description = "With --postgres: how many of the searches are also timed with ICR (default: up to 50)" };
        var concurrency = new Option<string>("--concurrency") { Description = "Searches in flight at once, comma-separated levels", DefaultValueFactory = _ => "1,8,200" };
        var poolSize = new Option<int>("--pool") { Description = "Rerankers in the pool (contexts over the one model)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var profile = new Option<bool>("--profile") { Description = "Also time one ICR call stage by stage (tokenise, decode, capture, aggregate, scoring)" };
        var command = new Command("rag", "Concurrent searches against one knowledge base and model: all answered, p50/p95 and requests/s without ICR, with one reranker and with a pool; or, with --postgres, the stores at scale")
        {
            model, requests, documents, candidates, contextSize, concurrency, poolSize, profile, postgres, chunks, rerankRequests, gpuLayers,
        };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            int n = Positive(parse.GetValue(requests), "--requests");
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), false, ct);
            if (parse.GetValue(postgres) is { } connectionString)
            {
                int reranked = parse.GetValue(rerankRequests) is int r and not 0 ? Math.Min(Positive(r, "--rerank-requests"), n) : Math.Min(n, 50);
                return await RagScaleTableAsync(m, connectionString, Positive(parse.GetValue(chunks), "--chunks"), n, reranked,
                    Positive(parse.GetValue(candidates), "--candidates"), ct);
            }
            int[] levels = ParseList(parse.GetValue(concurrency)!, s => int.Parse(s, CultureInfo.InvariantCulture), "--concurrency");
            if (levels.Any(v => v is < 1 or > 100_000))
            {
                throw new ArgumentException($"--concurrency takes positive whole numbers separated by commas (e.g. 1,8,200); got '{parse.GetValue(concurrency)}'.");
            }
            int size = Positive(parse.GetValue(poolSize), "--pool");
            string loadBefore = LoadAverage();
            RagLoadBench.Report report = await RagLoadBench.RunAsync(m, n, Positive(parse.GetValue(documents), "--documents"),
                Positive(parse.GetValue(candidates), "--candidates"), parse.GetValue(contextSize), levels, size, parse.GetValue(profile), ct);
            if (report.Profile.Count > 0)
            {
                var stages = new Table().AddColumn("threads").AddColumn("calls").AddColumn("windows").AddColumn("document tokens").AddColumn("tokenise ms")
                    .AddColumn("documents decode ms").AddColumn("(same, no capture)").AddColumn("2 tails decode ms").AddColumn("aggregate ms")
                    .AddColumn("C# scoring ms").AddColumn("total ms");
                foreach (RerankProfile.Row p in report.Profile)
                {
                    stages.AddRow(p.Threads.ToString(), p.Calls.ToString(), p.Windows.ToString("F1"), p.PromptTokens.ToString("F0"), p.TokenizeMs.ToString("F2"),
                        p.DocumentsDecodeMs.ToString("F1"), p.PlainDecodeMs.ToString("F1"), p.TailDecodeMs.ToString("F1"), p.AggregateMs.ToString("F2"),
                        p.ScoreMs.ToString("F2"), p.TotalMs.ToString("F1"));
                }
                AnsiConsole.MarkupLine("[bold]one ICR call by stage[/] (means over the calls, one context, one call at a time)");
                AnsiConsole.Write(stages);
            }
            var table = new Table().AddColumn("concurrency").AddColumn("search").AddColumn("answered").AddColumn("p50 ms").AddColumn("p95 ms")
                .AddColumn("max ms").AddColumn("requests/s").AddColumn("vs 1 reranker");
            foreach (RagLoadBench.Result r in report.Results)
            {
                RagLoadBench.Result before = report.Results.Where(b => b.Concurrency == r.Concurrency).ElementAt(1);
                table.AddRow(r.Concurrency.ToString(), Markup.Escape(r.Mode), $"{r.Answered}/{r.Requests}", r.P50Ms.ToString("F1"), r.P95Ms.ToString("F1"),
                    r.MaxMs.ToString("F1"), r.Throughput.ToString("F2"), r.Mode.Contains("ICR") ? $"{r.Throughput / before.Throughput:F2}x" : "");
            }
            AnsiConsole.MarkupLine($"[bold]rag[/]: {n} searches at each concurrency ({report.DistinctQueries} distinct queries, nothing cached), " +
                                   $"{Markup.Escape(ModelLabel(m))}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"pool vs 1 reranker: identical rerank scores in {report.SameScores}/{report.Compared} searches");
            AnsiConsole.MarkupLine($"{Environment.ProcessorCount} cores; load average (1, 5, 15 min) before {loadBefore}, after {LoadAverage()}");
            return report.Results.All(r => r.Answered == r.Requests) && report.SameScores == report.Compared ? 0 : 1;
        }));
        return command;
    }

    private static async Task<int> RagScaleTableAsync(LlamaModel m, string connectionString, int chunks, int queries, int reranked, int candidates, CancellationToken ct)
    {
        string loadBefore = LoadAverage();
        IReadOnlyList<RagScaleBench.Row> rows = await RagScaleBench.RunAsync(m, connectionString, chunks, queries, reranked, candidates, ct);
        var table = new Table().AddColumn("store").AddColumn("chunks").AddColumn("ingest s").AddColumn("chunks/s").AddColumn("search p50 ms")
            .AddColumn("p95 ms").AddColumn("+ICR p50 ms").AddColumn("+ICR p95 ms").AddColumn("marker found");
        foreach (RagScaleBench.Row r in rows)
        {
            table.AddRow(r.Store, r.Chunks.ToString(), r.IngestSeconds.ToString("F1"), (r.Chunks / r.IngestSeconds).ToString("F0"), r.P50Ms.ToString("F1"),
                r.P95Ms.ToString("F1"), r.RerankP50Ms.ToString("F1"), r.RerankP95Ms.ToString("F1"), $"{r.Found}/{queries}");
        }
        AnsiConsole.MarkupLine($"[bold]rag --postgres[/]: {queries} searches one at a time (+ICR: the first {reranked}, {candidates} candidates), {Markup.Escape(m.Description)}");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"PostgreSQL / embedded: ingest {rows[1].IngestSeconds / rows[0].IngestSeconds:F2}x the time, search p50 {rows[1].P50Ms / rows[0].P50Ms:F2}x, " +
                               $"p95 {rows[1].P95Ms / rows[0].P95Ms:F2}x, +ICR p50 {rows[1].RerankP50Ms / rows[0].RerankP50Ms:F2}x");
        AnsiConsole.MarkupLine($"{Environment.ProcessorCount} cores; load average (1, 5, 15 min) before {loadBefore}, after {LoadAverage()}");
        return 0;
    }

    /// <summary>The 1-, 5- and 15-minute load averages where the system reports them: figures from a shared machine need them beside.</summary>
    private static string LoadAverage()
    {
        try
        {
            return File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
        }
        catch (IOException)
        {
            return "unknown";
        }
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
        Option<string> split = Split();
        Option<DirectoryInfo?> data = Data();
        var cases = new Option<int>("--cases") { Description = "Questions to rank (0: all of the split)", DefaultValueFactory = _ => 0 };
        var passages = new Option<int>("--passages") { Description = "Passages per question, the answer among them (0: all the set has)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "Seed of the random order", DefaultValueFactory = _ => 1 };
        var contextSize = new Option<int>("--context") { Description = "Context tokens (0: the model's)", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Also print the figures as JSON" };
        var latencySizes = new Option<string>("--latency-sizes")
        {
            Description = "Candidate list sizes for the latency table (full ICR, block ICR, listwise, BM25)", DefaultValueFactory = _ => "20,100",
        };
        var latencyCases = new Option<int>("--latency-cases") { Description = "Questions per latency size (0: no latency table)", DefaultValueFactory = _ => 5 };
        var command = new Command("rerank",
            "Re-ranking on held-out documentation passages with hand-written paraphrased questions and BM25-mined hard negatives: " +
            "ICR (both conventions), BM25, dense embeddings, listwise generation and random, nDCG@10 and top-1")
        {
            model, split, data, cases, passages, seed, contextSize, gpuLayers, json, latencySizes, latencyCases,
        };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            int[] sizes = ParseList(parse.GetValue(latencySizes)!, s => int.Parse(s, CultureInfo.InvariantCulture), "--latency-sizes");
            if (sizes.Any(s => s is < 2 or > 253) || parse.GetValue(latencyCases) < 0)
            {
                throw new ArgumentException("--latency-sizes must be between 2 and 253 documents and --latency-cases 0 or more.");
            }
            string loadBefore = LoadAverage();
            IReadOnlyList<HeldOutData.RerankCase> set = HeldOutData.Open(parse.GetValue(data), parse.GetValue(split)!).LoadRerankCases();
            IReadOnlyList<HeldOutData.RerankCase> all = set;
            int fewest = set.Min(c => c.Passages.Count);
            int p = parse.GetValue(passages) == 0 ? fewest : parse.GetValue(passages);
            if (p < 2 || p > fewest)
            {
                throw new ArgumentException($"--passages must be between 2 and {fewest} (the passages each held-out question has), got {parse.GetValue(passages)}.");
            }
            int n = parse.GetValue(cases) == 0 ? set.Count : Positive(parse.GetValue(cases), "--cases");
            set = set.Take(n).Select(c => Shorten(c, p)).ToList();
            n = set.Count;
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), false, ct);
            int context = parse.GetValue(contextSize) > 0 ? parse.GetValue(contextSize) : m.TrainedContextLength;
            using var bench = new RerankBench(m, context, parse.GetValue(seed));
            var totals = RerankBench.Methods.ToDictionary(name => name, _ => (Ndcg: 0.0, Top1: 0, Ms: 0.0));
            for (int i = 0; i < n; i++)
            {
                foreach (RerankBench.Ranking r in await bench.RankAsync(set[i].Query, set[i].Passages, ct))
                {
                    var t = totals[r.Method];
                    totals[r.Method] = (t.Ndcg + RerankBench.Ndcg(r.Order, set[i].Relevant, 10), t.Top1 + (r.Order[0] == set[i].Relevant ? 1 : 0), t.Ms + r.Milliseconds);
                }
                Console.Error.WriteLine($"rerank: {i + 1}/{n} questions ranked");
            }
            double icrMs = totals[RerankBench.Icr].Ms;
            var table = new Table().AddColumn("method").AddColumn("nDCG@10").AddColumn("top-1").AddColumn("ms / question").AddColumn("time vs ICR");
            foreach ((string name, var t) in totals)
            {
                bool timed = name != RerankBench.RandomOrder;
                table.AddRow(Markup.Escape(name), (t.Ndcg / n).ToString("F3"), $"{100.0 * t.Top1 / n:F0}% ({t.Top1}/{n})",
                    timed ? (t.Ms / n).ToString("F1") : "-", timed ? $"{t.Ms / icrMs:F2}x" : "-");
            }
            AnsiConsole.MarkupLine($"[bold]rerank[/]: {Markup.Escape(CommandLine())}");
            AnsiConsole.MarkupLine($"{n} held-out questions ({parse.GetValue(split)} split) x {p} passages, {Markup.Escape(ModelLabel(m))}, context {context}, " +
                                   $"{Device(parse.GetValue(gpuLayers))}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"block ICR: caching each question's passages beforehand took {bench.BlockCacheMilliseconds / n:F1} ms / question " +
                                   "(not in its ms / question). Neither model was trained with block attention.");
            if (parse.GetValue(latencyCases) > 0)
            {
                var latencySet = all.Take(parse.GetValue(latencyCases)).Select(c => (c.Query, c.Passages, c.Relevant)).ToList();
                IReadOnlyList<RerankBench.LatencyRow> rows = await bench.LatencyAsync(latencySet,
                    all.SelectMany(c => c.Passages).Distinct().ToArray(), sizes, ct);
                var latency = new Table().AddColumn("documents").AddColumn("method").AddColumn("ms / query").AddColumn("speed-up vs full ICR")
                    .AddColumn("nDCG@10").AddColumn("top-1").AddColumn("cache build ms / query (apart)");
                foreach (RerankBench.LatencyRow r in rows)
                {
                    double full = rows.Single(x => x.Documents == r.Documents && x.Method == RerankBench.Icr).MsPerQuery;
                    latency.AddRow(r.Documents.ToString(CultureInfo.InvariantCulture), Markup.Escape(r.Method), r.MsPerQuery.ToString("F1"),
                        $"{full / r.MsPerQuery:F2}x", r.Ndcg10.ToString("F3"), $"{100 * r.Top1:F0}%", r.CacheMsPerQuery > 0 ? r.CacheMsPerQuery.ToString("F1") : "-");
                }
                AnsiConsole.MarkupLine($"latency: {latencySet.Count} questions of the {parse.GetValue(split)} split per size, each question's passages then " +
                                       $"other questions' passages; full and block ICR in windows of {context} tokens, merged the same way; listwise in " +
                                       "sliding windows of 20, step 10");
                AnsiConsole.Write(latency);
            }
            AnsiConsole.MarkupLine($"{Environment.ProcessorCount} cores; load average (1, 5, 15 min) before {loadBefore}, after {LoadAverage()}");
            if (parse.GetValue(json))
            {
                var byPeer = new JsonObject();
                foreach ((string peer, var score) in totals)
                {
                    byPeer[peer] = new JsonObject { ["ndcg10"] = score.Ndcg / n, ["top1"] = (double)score.Top1 / n, ["ms"] = score.Ms / n };
                }
                Console.WriteLine(byPeer.ToJsonString());
            }
            return 0;
        }));
        return command;
    }

    // The answer and the first p - 1 other passages, in the set's order.
    private static HeldOutData.RerankCase Shorten(HeldOutData.RerankCase c, int p)
    {
        List<int> kept = [c.Relevant, .. Enumerable.Range(0, c.Passages.Count).Where(i => i != c.Relevant).Take(p - 1)];
        kept.Sort();
        return new HeldOutData.RerankCase(c.Query, kept.Select(i => c.Passages[i]).ToArray(), kept.IndexOf(c.Relevant));
    }

    private static Command Needle()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<string> split = Split();
        Option<DirectoryInfo?> data = Data();
        var lengths = new Option<string>("--lengths") { Description = "Haystack lengths in tokens, comma separated", DefaultValueFactory = _ => "8192,65536" };
        var depths = new Option<string>("--depths") { Description = "Needle depths in [0,1], comma separated, taken in turn", DefaultValueFactory = _ => "0.1,0.3,0.5,0.7,0.9" };
        var needles = new Option<int>("--needles") { Description = "Needles per length, taken in turn from each form (0: every template of the split)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var contextSize = new Option<int>("--context") { Description = "Context tokens (0: the model's)", DefaultValueFactory = _ => 0 };
        var skipPeers = new Option<bool>("--no-baseline") { Description = "Skip the peers (truncation, BM25 chunks + read)" };
        var topK = new Option<int>("--top-k") { Description = "InfiniRetri: tokens ranked per chunk", DefaultValueFactory = _ => new InfiniteRetrieverOptions().TopKTokens };
        var cacheTokens = new Option<int>("--cache-tokens") { Description = "InfiniRetri: cache budget (0: a quarter of the context)", DefaultValueFactory = _ => 0 };
        var layer = new Option<int>("--layer") { Description = "InfiniRetri: scoring layer (-1: probed)", DefaultValueFactory = _ => -1 };
        var command = new Command("needle",
            "Needles of many forms in held-out prose, questions worded unlike them, distractors that share their words: " +
            "InfiniRetri vs truncation to the context vs BM25-selected chunks, found rate per length and form")
        {
            model, split, data, lengths, depths, needles, seed, contextSize, skipPeers, topK, cacheTokens, layer, gpuLayers,
        };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            int[] tokenLengths = ParseList(parse.GetValue(lengths)!, s => int.Parse(s, CultureInfo.InvariantCulture), "--lengths");
            double[] depthList = ParseList(parse.GetValue(depths)!, s => double.Parse(s, CultureInfo.InvariantCulture), "--depths");
            if (tokenLengths.Any(l => l is < 256 or > MaxHaystackTokens))
            {
                throw new ArgumentException($"--lengths must be between 256 and {MaxHaystackTokens:N0} tokens, got '{parse.GetValue(lengths)}'.");
            }
            if (depthList.Any(d => d is not (>= 0 and <= 1)))
            {
                throw new ArgumentException($"--depths must be numbers within [0, 1], got '{parse.GetValue(depths)}'.");
            }
            HeldOutData heldOut = HeldOutData.Open(parse.GetValue(data), parse.GetValue(split)!);
            IReadOnlyList<NeedleTemplate> templates = heldOut.LoadNeedles();
            if (parse.GetValue(needles) != 0)
            {
                // One of each form in turn, so that a short run still covers every form.
                int take = Positive(parse.GetValue(needles), "--needles");
                templates = templates.Select((t, i) => (t, Turn: templates.Take(i).Count(u => u.Form == t.Form)))
                    .OrderBy(x => x.Turn).Select(x => x.t).Take(take).ToList();
            }
            IReadOnlyList<string> prose = heldOut.LoadParagraphs();
            bool withPeers = !parse.GetValue(skipPeers);
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), false, ct);
            int context = parse.GetValue(contextSize) > 0 ? parse.GetValue(contextSize) : m.TrainedContextLength;
            using var retriever = new InfiniteRetriever(m, new InfiniteRetrieverOptions
            {
                ContextSize = context, TopKTokens = parse.GetValue(topK), CacheTokens = parse.GetValue(cacheTokens), Layer = parse.GetValue(layer),
            });
            using var bench = new NeedleBench(m, retriever, context);
            string sample = string.Join("\n\n", prose.Take(400));
            double charsPerToken = (double)sample.Length / m.Tokenizer.CountTokens(sample);
            var random = new Random(parse.GetValue(seed));
            // (length, form) -> method -> (found, cases, seconds)
            var cells = new Dictionary<(int Length, string Form), Dictionary<string, (int Found, int Cases, double Seconds)>>();
            foreach (int length in tokenLengths)
            {
                for (int i = 0; i < templates.Count; i++)
                {
                    Needle needle = templates[i].Fill(random);
                    List<string> haystack = NeedleBench.BuildHaystack(prose, (long)(length * charsPerToken), needle, depthList[i % depthList.Length], random);
                    IReadOnlyList<NeedleBench.Outcome> outcomes = await bench.RunAsync(needle, haystack, withPeers, ct);
                    foreach (NeedleBench.Outcome o in outcomes)
                    {
                        foreach (string form in new[] { AllForms, needle.Template.Form })
                        {
                            var byMethod = cells.TryGetValue((length, form), out var found) ? found : cells[(length, form)] = [];
                            var c = byMethod.GetValueOrDefault(o.Method);
                            byMethod[o.Method] = (c.Found + (o.Found ? 1 : 0), c.Cases + 1, c.Seconds + o.Seconds);
                        }
                    }
                    Console.Error.WriteLine($"needle: {length:N0} tokens, {i + 1}/{templates.Count} ({needle.Template.Form}): " +
                                            string.Join(", ", outcomes.Select(o => $"{o.Method} {(o.Found ? "found" : "missed")} in {o.Seconds:F1} s")));
                }
            }
            string[] methods = withPeers ? NeedleBench.Methods : [NeedleBench.InfiniRetri];
            var table = new Table().AddColumn("tokens").AddColumn("needle form");
            foreach (string method in methods)
            {
                table.AddColumn($"{Markup.Escape(method)} found");
            }
            table.AddColumn("InfiniRetri tok/s");
            foreach (((int length, string form), var byMethod) in cells)
            {
                var infini = byMethod[NeedleBench.InfiniRetri];
                table.AddRow([form == AllForms ? $"{length:N0}" : "", form == AllForms ? "[bold]all[/]" : form,
                    .. methods.Select(method => $"{100.0 * byMethod[method].Found / byMethod[method].Cases:F0}% ({byMethod[method].Found}/{byMethod[method].Cases})"),
                    form == AllForms ? $"{(double)length * infini.Cases / infini.Seconds:N0}" : ""]);
            }
            AnsiConsole.MarkupLine($"[bold]needle[/]: {Markup.Escape(CommandLine())}");
            AnsiConsole.MarkupLine($"{templates.Count} needles per length ({parse.GetValue(split)} split), {Markup.Escape(ModelLabel(m))}, context {context}, " +
                                   $"InfiniRetri layer {retriever.Layer}, depths {string.Join(",", depthList)}, {Device(parse.GetValue(gpuLayers))}");
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    private const string AllForms = "";

    // 16M tokens of haystack is about 64 MB of text; beyond that the bench would only measure memory.
    private const int MaxHaystackTokens = 16 * 1024 * 1024;

    private static Option<string> Split() => new("--split")
    {
        Description = "Held-out split: dev (for choosing settings) or test (for reporting)",
        DefaultValueFactory = _ => "test",
    };

    private static Option<DirectoryInfo?> Data() => new("--data")
    {
        Description = "The held-out data folder (default: models/heldout above the working directory)",
    };

    private static string CommandLine() => "heed " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));

    private static string Device(int gpuLayers) => gpuLayers != 0 && LlamaBackend.HasGpu ? "GPU" : "CPU";

    /// <summary>The file name and parameter count (llama.cpp's description says "?B" for sizes it has no name for).</summary>
    private static string ModelLabel(LlamaModel model)
    {
        double p = model.ParameterCount;
        string size = p >= 1e9 ? $"{p / 1e9:F1}B" : p >= 1e6 ? $"{p / 1e6:F1}M" : $"{p / 1e3:F0}K";
        return $"{Path.GetFileName(model.Path)} ({model.Architecture}, {size} parameters)";
    }

    private static T[] ParseList<T>(string text, Func<string, T> parse, string option)
    {
        try
        {
            T[] values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(parse).ToArray();
            return values.Length > 0 ? values : throw new FormatException();
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new ArgumentException($"{option} must be a comma-separated list of numbers in range, got '{text}'.");
        }
    }

    private static int Positive(int value, string option) =>
        value > 0 ? value : throw new ArgumentException($"{option} must be positive, got {value}.");
}
