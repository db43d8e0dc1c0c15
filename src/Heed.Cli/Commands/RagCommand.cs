using System.CommandLine;
using Heed.AI;
using Heed.Llama;
using Heed.Rag;
using Heed.Ranking;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Heed.Storage;
using Heed.Storage.Postgres;
using Heed.Text;

namespace Heed.Cli.Commands;

/// <summary>
/// `heed rag ingest DIR --index I`, `heed rag search "Q" --index I` and `heed rag ask "Q" --index I --model M`:
/// retrieval-augmented generation over a folder of .txt, .md and .html files. `--postgres CONNSTR` instead of
/// `--index` keeps the knowledge base in PostgreSQL with pgvector, shared by every process that uses the database.
/// </summary>
internal static class RagCommand
{
    public static Command Create() => new("rag", "Index a folder of documents and answer questions from it with citations")
    {
        Ingest(),
        Search(),
        Ask(),
    };

    private static Option<FileInfo?> Index() => new("--index", "-i")
    {
        Description = "The index file (created on first ingest), e.g. docs.heedindex; or use --postgres",
    };

    private static Option<string?> Postgres() => new("--postgres")
    {
        Description = "Keep the knowledge base in PostgreSQL (with pgvector) instead of an index file: an Npgsql connection string, " +
                      "e.g. \"Host=db;Database=heed;Username=app\" (the password can come from ~/.pgpass)",
    };

    private static Option<bool> Embed() => new("--embed")
    {
        Description = "Use the model's embeddings for hybrid retrieval (BM25 + dense, fused by reciprocal rank); needs --model, and the same choice at ingest and query time",
    };

    private static Command Ingest()
    {
        var directory = new Argument<DirectoryInfo>("directory") { Description = "The folder of .txt, .md and .html files (searched recursively)" };
        Option<FileInfo?> index = Index();
        Option<string?> postgres = Postgres();
        var model = new Option<FileInfo?>("--model", "-m") { Description = "A GGUF model whose tokenizer counts chunk tokens (default: an estimate); needed for --embed" };
        Option<bool> embed = Embed();
        var maxTokens = new Option<int>("--chunk-tokens") { Description = "Most tokens per chunk", DefaultValueFactory = _ => 256 };
        var overlap = new Option<int>("--overlap") { Description = "Sentences each chunk repeats from the previous one", DefaultValueFactory = _ => 1 };
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<bool> verbose = CommonOptions.Verbose();
        var command = new Command("ingest", "Add a folder to the index; changed files are re-indexed, deleted ones removed, unchanged ones skipped")
        {
            directory, index, postgres, model, embed, maxTokens, overlap, gpuLayers, verbose,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(async () =>
        {
            DirectoryInfo folder = parse.GetValue(directory)!;
            FileInfo? modelFile = parse.GetValue(model);
            bool useEmbeddings = parse.GetValue(embed);
            RequireModelFor(useEmbeddings, modelFile);
            using ILoggerFactory logs = Logs(parse.GetValue(verbose));
            using LlamaModel? m = modelFile is null ? null
                : await ModelLoader.LoadAsync(modelFile, parse.GetValue(gpuLayers), parse.GetValue(verbose), cancellationToken);
            // the embedding context must hold a whole chunk (the model tokenizer counts them when --model is given)
            using LlamaEmbeddingGenerator? embeddings = useEmbeddings ? new LlamaEmbeddingGenerator(m!, contextSize: Math.Max(512, parse.GetValue(maxTokens) + 16)) : null;
            var options = new RagPipelineOptions
            {
                TokenCounter = m is null ? null : m.Tokenizer.CountTokens,
                TokenCounterName = m is null ? null : Path.GetFileName(m.Path),
                Chunking = new ChunkingOptions { MaxTokens = parse.GetValue(maxTokens), OverlapSentences = parse.GetValue(overlap) },
                EmbeddingGenerator = embeddings,
                Logger = logs.CreateLogger("heed.rag"),
            };
            using RagPipeline rag = await OpenAsync(parse.GetValue(index), parse.GetValue(postgres), options, cancellationToken);
            IngestResult result = Console.IsOutputRedirected || Console.IsErrorRedirected
                ? await rag.IngestAsync(folder.FullName, null, cancellationToken)
                : await IngestWithProgressAsync(rag, folder, cancellationToken);
            foreach (SkippedFile skipped in result.Skipped)
            {
                AnsiConsole.MarkupLine($"[yellow]skipped[/] {Markup.Escape(skipped.Path)}: {Markup.Escape(skipped.Reason)}");
            }
            Console.WriteLine(result.Summary);
            return 0;
        }));
        return command;
    }

    private static Command Search()
    {
        var query = new Argument<string>("query") { Description = "What to look for" };
        Option<FileInfo?> index = Index();
        Option<string?> postgres = Postgres();
        var top = new Option<int>("--top", "-k") { Description = "How many passages", DefaultValueFactory = _ => 5 };
        var model = new Option<FileInfo?>("--model", "-m") { Description = "A GGUF model, for --embed or --rerank" };
        Option<bool> embed = Embed();
        var rerank = new Option<bool>("--rerank") { Description = "Re-rank the candidates by the model's attention (in-context re-ranking); needs --model" };
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<bool> verbose = CommonOptions.Verbose();
        var command = new Command("search", "Show the passages that best match a query, with their sources")
        {
            query, index, postgres, top, model, embed, rerank, gpuLayers, verbose,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(async () =>
        {
            RequireIndex(parse.GetValue(index));
            FileInfo? modelFile = parse.GetValue(model);
            RequireModelFor(parse.GetValue(embed) || parse.GetValue(rerank), modelFile);
            using ILoggerFactory logs = Logs(parse.GetValue(verbose));
            using LlamaModel? m = modelFile is null ? null
                : await ModelLoader.LoadAsync(modelFile, parse.GetValue(gpuLayers), parse.GetValue(verbose), cancellationToken);
            using LlamaEmbeddingGenerator? embeddings = parse.GetValue(embed) ? new LlamaEmbeddingGenerator(m!) : null;
            using InContextReranker? reranker = parse.GetValue(rerank) ? new InContextReranker(m!) : null;
            var options = new RagPipelineOptions { EmbeddingGenerator = embeddings, Reranker = reranker, Logger = logs.CreateLogger("heed.rag") };
            using RagPipeline rag = await OpenAsync(parse.GetValue(index), parse.GetValue(postgres), options, cancellationToken);
            IReadOnlyList<SearchHit> hits = await rag.SearchAsync(parse.GetValue(query)!, parse.GetValue(top), cancellationToken);
            if (hits.Count == 0)
            {
                Console.WriteLine(await rag.Store.CountChunksAsync(cancellationToken) == 0
                    ? $"The knowledge base {rag.Store.Location} is empty; run `heed rag ingest <folder>` on it first." : "No passage matches.");
                return 0;
            }
            var table = new Table().AddColumn("#").AddColumn("score").AddColumn("source").AddColumn("passage");
            foreach (SearchHit hit in hits)
            {
                table.AddRow(hit.Rank.ToString(), hit.Score.ToString("G4"),
                    Markup.Escape($"{hit.SourcePath} [{hit.Chunk.StartOffset}–{hit.Chunk.EndOffset})"), Markup.Escape(Excerpt(hit.Chunk.Text)));
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    private static Command Ask()
    {
        var question = new Argument<string>("question") { Description = "The question" };
        Option<FileInfo?> index = Index();
        Option<string?> postgres = Postgres();
        Option<FileInfo> model = CommonOptions.Model();
        Option<bool> embed = Embed();
        var rerank = new Option<bool>("--rerank") { Description = "Re-rank the candidates by the model's attention (in-context re-ranking)" };
        var sources = new Option<int>("--sources", "-k") { Description = "Passages given to the model", DefaultValueFactory = _ => 4 };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens in the answer", DefaultValueFactory = _ => 512 };
        var contextSize = new Option<int>("--context") { Description = "Context size in tokens (0: the model's)", DefaultValueFactory = _ => 0 };
        var template = new Option<string>("--chat-template") { Description = "Chat template used when the model has none llama.cpp knows", DefaultValueFactory = _ => "chatml" };
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<bool> verbose = CommonOptions.Verbose();
        var command = new Command("ask", "Answer a question from the indexed documents, citing them as [1], [2], ...")
        {
            question, index, postgres, model, embed, rerank, sources, maxTokens, contextSize, template, gpuLayers, verbose,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(async () =>
        {
            RequireIndex(parse.GetValue(index));
            using ILoggerFactory logs = Logs(parse.GetValue(verbose));
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), parse.GetValue(verbose), cancellationToken);
            using LlamaEmbeddingGenerator? embeddings = parse.GetValue(embed) ? new LlamaEmbeddingGenerator(m) : null;
            using InContextReranker? reranker = parse.GetValue(rerank) ? new InContextReranker(m) : null;
            using IChatClient chat = new LlamaChatClient(m, new LlamaContextOptions { ContextSize = parse.GetValue(contextSize) },
                new LlamaChatClientOptions { FallbackTemplate = parse.GetValue(template) });
            var options = new RagPipelineOptions
            {
                EmbeddingGenerator = embeddings,
                Reranker = reranker,
                ChatClient = chat,
                AnswerSourceCount = parse.GetValue(sources),
                MaxAnswerTokens = parse.GetValue(maxTokens),
                Logger = logs.CreateLogger("heed.rag"),
            };
            using RagPipeline rag = await OpenAsync(parse.GetValue(index), parse.GetValue(postgres), options, cancellationToken);
            if (await rag.Store.CountChunksAsync(cancellationToken) == 0)
            {
                throw new InvalidOperationException($"The knowledge base {rag.Store.Location} is empty; run `heed rag ingest <folder>` on it first.");
            }
            RagAnswer answer = await rag.AskAsync(parse.GetValue(question)!, cancellationToken);
            Console.WriteLine(answer.Text.Trim());
            if (answer.FoundSources)
            {
                Console.WriteLine();
                foreach (Citation source in answer.Sources)
                {
                    string mark = answer.CitedNumbers.Contains(source.Number) ? "[green]cited[/]" : "[grey]not cited[/]";
                    AnsiConsole.MarkupLine($"[[{source.Number}]] {Markup.Escape(source.SourcePath)} " +
                                           $"(chars {source.StartOffset}–{source.EndOffset}) {mark}");
                }
            }
            return 0;
        }));
        return command;
    }

    /// <summary>The shared error handling, plus the failures only RAG commands have (corrupt index, missing folder).</summary>
    private static Task<int> RunAsync(Func<Task<int>> body) => CliErrors.RunAsync(async () =>
    {
        try
        {
            return await body();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException // corrupt index, missing folder, failed save
                                       or HeedStoreException or Npgsql.NpgsqlException) // database unreachable, without pgvector, newer schema
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    });

    private static async Task<RagPipeline> OpenAsync(FileInfo? index, string? postgres, RagPipelineOptions options, CancellationToken cancellationToken)
    {
        if ((index is null) == (postgres is null))
        {
            throw new ArgumentException("Say where the knowledge base is: --index <file> or --postgres <connection string> (one of them).");
        }
        if (postgres is not null)
        {
            return RagPipeline.Create(await PostgresKnowledgeStore.OpenAsync(postgres, options.Logger, cancellationToken), options);
        }
        RagPipeline rag = await RagPipeline.OpenAsync(index!.FullName, options, cancellationToken);
        if (rag.RecoveredFromBackup)
        {
            AnsiConsole.MarkupLine($"[yellow]The index {Markup.Escape(index.FullName)} was damaged; using its last good copy (.bak). " +
                                   "The next ingest writes a fresh index.[/]");
        }
        return rag;
    }

    private static async Task<IngestResult> IngestWithProgressAsync(RagPipeline rag, DirectoryInfo folder, CancellationToken cancellationToken)
    {
        IngestResult? result = null;
        await AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async ctx =>
            {
                ProgressTask task = ctx.AddTask("scanning", maxValue: 1.0);
                var progress = new SynchronousProgress<IngestProgress>(p =>
                {
                    task.Value = p.Fraction;
                    string what = p.Stage == IngestStage.Reading && p.CurrentFile is not null ? Path.GetFileName(p.CurrentFile) : p.Stage.ToString().ToLowerInvariant();
                    task.Description = Markup.Escape($"{Math.Min(p.FilesDone + 1, Math.Max(p.FilesTotal, 1))}/{p.FilesTotal} {what}, {p.ChunksCreated} chunks");
                });
                result = await rag.IngestAsync(folder.FullName, progress, cancellationToken);
                task.Value = 1.0;
            });
        return result!;
    }

    // Searching and asking read an index; only ingest creates one, so a mistyped path is an error.
    // (With --postgres there is no index file; OpenAsync says when neither or both are given.)
    private static void RequireIndex(FileInfo? index)
    {
        if (index is not null)
        {
            CommonOptions.RequireFile(index, "Index file", $" Create it with `heed rag ingest <folder> --index {index.FullName}`, or check the path.");
        }
    }

    private static void RequireModelFor(bool needed, FileInfo? model)
    {
        if (needed && model is null)
        {
            throw new ArgumentException("--embed and --rerank use a model: add --model <file.gguf>.");
        }
    }

    private static ILoggerFactory Logs(bool verbose) =>
        LoggerFactory.Create(b => b.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning));

    private static string Excerpt(string text)
    {
        string flat = text.ReplaceLineEndings(" ");
        return flat.Length <= 160 ? flat : flat[..157] + "...";
    }

    /// <summary>Reports on the caller's thread, so the bar never lags behind or updates after the ingest ends.</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
