using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Heed.Cli.Bench;

/// <summary>
/// One split (dev or test) of the held-out evaluation data in models/heldout (its README says how
/// it was made): pages of real prose, needle templates and the re-ranking set. Nothing in it was
/// used to train a model; settings are chosen on dev, figures are reported on test.
/// </summary>
internal sealed class HeldOutData
{
    public static readonly string[] Splits = ["dev", "test"];


    private HeldOutData(DirectoryInfo folder, string split)
    {
        Folder = folder;
        Split = split;
    }

    /// <summary>The split's folder, e.g. models/heldout/test.</summary>
    public DirectoryInfo Folder { get; }

    public string Split { get; }

    /// <summary>Opens <paramref name="split"/> under <paramref name="root"/>, or under the models/heldout found above the working directory or the tool.</summary>
    public static HeldOutData Open(DirectoryInfo? root, string split)
    {
        if (!Splits.Contains(split))
        {
            throw new ArgumentException($"--split must be dev or test, got '{split}'.");
        }
        root ??= FindDefaultRoot() ?? throw new ArgumentException(
            "The held-out data (models/heldout) was not found above the working directory; pass --data <path of models/heldout>.");
        var folder = new DirectoryInfo(Path.Combine(root.FullName, split));
        if (!folder.Exists)
        {
            throw new ArgumentException($"Held-out data folder '{folder.FullName}' does not exist; --data takes the path of models/heldout.");
        }
        return new HeldOutData(folder, split);
    }

    private static DirectoryInfo? FindDefaultRoot()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (DirectoryInfo? d = new(start); d is not null; d = d.Parent)
            {
                var candidate = new DirectoryInfo(Path.Combine(d.FullName, "models", "heldout"));
                if (candidate.Exists)
                {
                    return candidate;
                }
            }
        }
        return null;
    }

    /// <summary>A re-ranking question, its passages and the index of the one that answers it.</summary>
    public sealed record RerankCase(string Query, IReadOnlyList<string> Passages, int Relevant);

    public IReadOnlyList<RerankCase> LoadRerankCases() =>
        ReadJsonLines("rerank.jsonl", HeldOutJson.Default.RerankCase, c => c.Query is { Length: > 0 } && c.Passages is { Count: > 1 } && c.Relevant >= 0 && c.Relevant < c.Passages.Count);

    /// <summary>Every paragraph of every page, pages in file order.</summary>
    public IReadOnlyList<string> LoadParagraphs()
    {
        string path = Path.Combine(Folder.FullName, "docs.jsonl.gz");
        RequireFile(path);
        using var gzip = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        var paragraphs = new List<string>();
        foreach (Page page in ReadJsonLines(reader, path, HeldOutJson.Default.Page, p => p.Paragraphs is { Count: > 0 }))
        {
            paragraphs.AddRange(page.Paragraphs);
        }
        return paragraphs;
    }

    public IReadOnlyList<NeedleTemplate> LoadNeedles()
    {
        string path = Path.Combine(Folder.FullName, "needles.json");
        RequireFile(path);
        NeedleTemplate[] templates = JsonSerializer.Deserialize(File.ReadAllText(path), HeldOutJson.Default.NeedleTemplateArray)
                                     ?? throw new InvalidOperationException($"{path} holds no needle templates.");
        foreach (NeedleTemplate t in templates)
        {
            t.Validate(path);
        }
        return templates;
    }

    internal sealed record Page(string Id, IReadOnlyList<string> Paragraphs);

    private IReadOnlyList<T> ReadJsonLines<T>(string name, JsonTypeInfo<T> type, Func<T, bool> valid)
    {
        string path = Path.Combine(Folder.FullName, name);
        RequireFile(path);
        using var reader = new StreamReader(path);
        return ReadJsonLines(reader, path, type, valid);
    }

    private static List<T> ReadJsonLines<T>(TextReader reader, string path, JsonTypeInfo<T> type, Func<T, bool> valid)
    {
        var items = new List<T>();
        int lineNumber = 0;
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            T? item;
            try
            {
                item = JsonSerializer.Deserialize(line, type);
            }
            catch (JsonException e)
            {
                throw new InvalidOperationException($"{path} line {lineNumber}: {e.Message}");
            }
            items.Add(item is not null && valid(item) ? item : throw new InvalidOperationException($"{path} line {lineNumber} is incomplete."));
        }
        return items.Count > 0 ? items : throw new InvalidOperationException($"{path} is empty.");
    }

    private static void RequireFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Held-out data file '{path}' does not exist; rebuild it with models/heldout/prepare.py.", path);
        }
    }
}

// Source-generated readers: the CLI is trimmed and AOT-compatible, so no reflection-based JSON.
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(HeldOutData.RerankCase))]
[JsonSerializable(typeof(HeldOutData.Page))]
[JsonSerializable(typeof(NeedleTemplate[]))]
internal sealed partial class HeldOutJson : JsonSerializerContext;
