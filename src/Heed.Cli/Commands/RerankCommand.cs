using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Heed.Llama;
using Heed.Ranking;
using Spectre.Console;

namespace Heed.Cli.Commands;

/// <summary>`heed rerank --model M --query Q --docs docs.jsonl`: in-context re-ranking.</summary>
internal static class RerankCommand
{
    public static Command Create()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<bool> verbose = CommonOptions.Verbose();
        var query = new Option<string>("--query", "-q") { Description = "What the documents are ranked against", Required = true };
        var docs = new Option<FileInfo>("--docs", "-d")
        {
            Description = "JSON Lines: one document per line, a JSON string or an object with a \"text\" field",
            Required = true,
        };
        var top = new Option<int?>("--top", "-k") { Description = "Show only the best K" };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var contextSize = new Option<int>("--context") { Description = "Tokens per window (0: the model's)", DefaultValueFactory = _ => 0 };
        var paperConvention = new Option<bool>("--paper-convention")
        {
            Description = "Read attention as the ICR authors do (whole query tail, delimiters scored), for comparison with their figures",
        };
        var command = new Command("rerank", "Rank documents by the attention a query pays them (ICR)")
        {
            model, query, docs, top, json, contextSize, paperConvention, gpuLayers, verbose,
        };
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync(async () =>
        {
            List<string> documents = ReadDocuments(parse.GetValue(docs)!);
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), parse.GetValue(verbose), cancellationToken);
            using var reranker = new InContextReranker(m, new InContextRerankerOptions
            {
                ContextSize = parse.GetValue(contextSize), UsePaperConvention = parse.GetValue(paperConvention),
            });
            IReadOnlyList<RankedDocument> ranked = await reranker.RerankAsync(parse.GetValue(query)!, documents, parse.GetValue(top), cancellationToken);
            if (parse.GetValue(json))
            {
                Console.WriteLine(new JsonArray([.. ranked.Select(r => new JsonObject { ["index"] = r.Index, ["score"] = r.Score, ["text"] = r.Text })]).ToJsonString());
                return 0;
            }
            var table = new Table().AddColumn("rank").AddColumn("doc").AddColumn("score").AddColumn("text");
            int rank = 1;
            foreach (RankedDocument r in ranked)
            {
                string text = r.Text.Length > 80 ? r.Text[..77] + "..." : r.Text;
                table.AddRow((rank++).ToString(), r.Index.ToString(), r.Score.ToString("F4"), Markup.Escape(text));
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    internal static List<string> ReadDocuments(FileInfo file)
    {
        CommonOptions.RequireFile(file, "Documents file");
        var documents = new List<string>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(file.FullName))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            try
            {
                using JsonDocument parsed = JsonDocument.Parse(line);
                JsonElement root = parsed.RootElement;
                JsonElement text = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("text", out JsonElement t) ? t : root;
                if (text.ValueKind != JsonValueKind.String)
                {
                    throw new ArgumentException($"{file.Name} line {lineNumber}: expected a JSON string or an object with a \"text\" string.");
                }
                documents.Add(text.GetString()!);
            }
            catch (JsonException e)
            {
                throw new ArgumentException($"{file.Name} line {lineNumber} is not valid JSON: {e.Message}");
            }
        }
        if (documents.Count == 0)
        {
            throw new ArgumentException($"{file.Name} has no documents; write one JSON string or {{\"text\": ...}} object per line.");
        }
        return documents;
    }
}
