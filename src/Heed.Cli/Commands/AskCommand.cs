using System.CommandLine;
using System.Text.Json.Nodes;
using Heed.Llama;
using Heed.Retrieval;
using Spectre.Console;

namespace Heed.Cli.Commands;

/// <summary>
/// `heed ask --model M --file big.txt --question Q`: InfiniRetri over a long document. Exits with
/// <see cref="NotFoundExitCode"/> when nothing in the document stands out as an answer (no answer is generated).
/// </summary>
internal static class AskCommand
{
    /// <summary>The exit code of a search that found nothing (1 is an error, 130 a cancellation).</summary>
    public const int NotFoundExitCode = 3;

    public static Command Create()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<bool> verbose = CommonOptions.Verbose();
        var file = new Option<FileInfo>("--file", "-f") { Description = "The long UTF-8 text to read", Required = true };
        var question = new Option<string>("--question", "-q") { Description = "What to find", Required = true };
        var evidence = new Option<bool>("--show-evidence") { Description = "Print the evidence sentences with their scores and offsets" };
        var json = new Option<bool>("--json") { Description = "Print JSON (answer, evidence, chunks, tokens, peak memory)" };
        var contextSize = new Option<int>("--context") { Description = "Tokens per chunk pass (0: the model's)", DefaultValueFactory = _ => 0 };
        var retrieveOnly = new Option<bool>("--retrieve-only") { Description = "Find the evidence, generate no answer" };
        var layer = new Option<int>("--layer") { Description = "Layer whose attention scores tokens (-1: probed)", DefaultValueFactory = _ => -1 };
        var command = new Command("ask", $"Answer a question from a document longer than the context (InfiniRetri); exit code {NotFoundExitCode}: not found")
        {
            model, file, question, evidence, json, contextSize, retrieveOnly, layer, gpuLayers, verbose,
        };
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync(async () =>
        {
            FileInfo document = parse.GetValue(file)!;
            CommonOptions.RequireFile(document, "Document");
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), parse.GetValue(verbose), cancellationToken);
            using var retriever = new InfiniteRetriever(m, new InfiniteRetrieverOptions { ContextSize = parse.GetValue(contextSize), Layer = parse.GetValue(layer) });
            string q = parse.GetValue(question)!;
            var started = System.Diagnostics.Stopwatch.StartNew();
            RetrievalResult retrieval = parse.GetValue(json) || Console.IsErrorRedirected
                ? await retriever.RetrieveFileAsync(q, document.FullName, null, cancellationToken)
                : await WithProgressAsync(retriever, q, document, cancellationToken);
            string? answer = null;
            if (!parse.GetValue(retrieveOnly) && retrieval.Found)
            {
                answer = await retriever.AnswerFromEvidenceAsync(q, retrieval, cancellationToken);
            }
            double seconds = started.Elapsed.TotalSeconds;
            if (parse.GetValue(json))
            {
                Console.WriteLine(new JsonObject
                {
                    ["answer"] = answer,
                    ["found"] = retrieval.Found,
                    ["evidence"] = new JsonArray([.. retrieval.Evidence.Select(e => new JsonObject
                        { ["text"] = e.Text, ["score"] = e.Score, ["offset"] = e.Offset, ["length"] = e.Length })]),
                    ["chunks"] = retrieval.ChunksProcessed,
                    ["tokens"] = retrieval.TokensProcessed,
                    ["seconds"] = seconds,
                    ["peakCaptureBytes"] = retriever.PeakCaptureBytes,
                    ["peakResidentBytes"] = PeakResidentBytes(),
                }.ToJsonString());
                return retrieval.Found ? 0 : NotFoundExitCode;
            }
            if (!retrieval.Found)
            {
                AnsiConsole.MarkupLine("[bold]not found:[/] nothing in the document stands out as an answer to this question.");
            }
            else if (answer is not null)
            {
                AnsiConsole.MarkupLine($"[bold]answer:[/] {Markup.Escape(answer)}");
            }
            AnsiConsole.MarkupLine($"[grey]{retrieval.ChunksProcessed} chunks, {retrieval.TokensProcessed:N0} tokens in {seconds:F1} s ({retrieval.TokensProcessed / Math.Max(seconds, 1e-9):N0} tokens/s)[/]");
            if (parse.GetValue(evidence))
            {
                // The best few by score; the whole cache (in document order) is in --json.
                const int shown = 8;
                var table = new Table().AddColumn("offset").AddColumn("score").AddColumn("sentence");
                foreach (Evidence e in retrieval.Evidence.OrderByDescending(e => e.Score).Take(shown))
                {
                    table.AddRow(e.Offset.ToString(), e.Score.ToString("F4"), Markup.Escape(e.Text));
                }
                AnsiConsole.Write(table);
                if (retrieval.Evidence.Count > shown)
                {
                    AnsiConsole.MarkupLine($"[grey]{retrieval.Evidence.Count - shown} more cached sentences; --json lists all[/]");
                }
            }
            return retrieval.Found ? 0 : NotFoundExitCode;
        }));
        return command;
    }

    private static async Task<RetrievalResult> WithProgressAsync(InfiniteRetriever retriever, string question, FileInfo document,
        CancellationToken cancellationToken)
    {
        RetrievalResult? result = null;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                ProgressTask task = ctx.AddTask($"reading {document.Name}", maxValue: Math.Max(1, document.Length));
                var progress = new Progress<RetrievalProgress>(p =>
                {
                    task.Value = p.CharactersRead;
                    task.Description = $"reading {document.Name}: chunk {p.ChunksDone}";
                });
                result = await retriever.RetrieveFileAsync(question, document.FullName, progress, cancellationToken);
                task.Value = task.MaxValue;
            });
        return result!;
    }

    // VmHWM: the most resident memory this process has used (Linux).
    internal static long? PeakResidentBytes()
    {
        try
        {
            string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
