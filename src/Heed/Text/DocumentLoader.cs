using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heed.Text;

/// <summary>
/// Reads .txt, .md/.markdown and .html/.htm files as text. Binary files (a NUL byte in the first 8 KB) are
/// skipped with a reason; invalid UTF-8 is decoded with U+FFFD and logged as a warning, never thrown.
/// </summary>
public sealed class DocumentLoader
{
    private static readonly string[] Extensions = [".txt", ".md", ".markdown", ".html", ".htm"];
    private const int MarkdownTitleScanChars = 4096;

    private readonly ILogger _logger;

    /// <summary>Creates a loader.</summary>
    /// <param name="logger">Receives warnings about invalid UTF-8; null discards them.</param>
    public DocumentLoader(ILogger? logger = null)
    {
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The file extensions this loader reads (lowercase, with the dot).</summary>
    public static IReadOnlyList<string> SupportedExtensions => Extensions;

    /// <summary>Whether a path has an extension this loader reads (case-insensitive).</summary>
    public static bool IsSupported(string path) =>
        Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// <summary>Reads a whole file into a <see cref="LoadedDocument"/>, or says why it was skipped.</summary>
    /// <param name="path">A .txt, .md, .markdown, .html or .htm file.</param>
    /// <param name="cancellationToken">Checked before reading.</param>
    /// <exception cref="ArgumentException">The path is empty or its extension is not supported.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public Task<DocumentLoadResult> LoadAsync(string path, CancellationToken cancellationToken = default)
    {
        string fullPath = ValidatePath(path);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.Run(() =>
        {
            using OpenedDocument? opened = Open(fullPath, out SkippedFile? skipped);
            if (opened is null)
            {
                return new DocumentLoadResult(null, skipped);
            }
            string text = opened.Reader.ReadToEnd();
            opened.WarnIfInvalidUtf8(_logger);
            return new DocumentLoadResult(new LoadedDocument(fullPath, opened.Title, text, opened.InvalidUtf8Sequences), null);
        }, cancellationToken);
    }

    /// <summary>Opens a file for streaming, or returns null with the reason it is skipped.</summary>
    internal OpenedDocument? Open(string fullPath, out SkippedFile? skipped)
    {
        string? binary = BinaryFileDetector.BinaryReason(fullPath);
        if (binary is not null)
        {
            skipped = new SkippedFile(fullPath, binary);
            _logger.LogInformation("Skipping {Path}: {Reason}", fullPath, binary);
            return null;
        }
        skipped = null;
        string extension = Path.GetExtension(fullPath).ToLowerInvariant();
        if (extension is ".html" or ".htm")
        {
            (string html, int invalid) = TextFileReader.ReadAll(fullPath);
            (string? title, string text) = HtmlTextExtractor.Extract(html);
            return new OpenedDocument(fullPath, title, new StringReader(text), null, invalid);
        }
        string? markdownTitle = extension is ".md" or ".markdown" ? MarkdownTitle(fullPath) : null;
        (TextReader reader, CountingReplacementFallback? counter) = TextFileReader.Open(fullPath);
        return new OpenedDocument(fullPath, markdownTitle, reader, counter);
    }

    internal static string ValidatePath(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string fullPath = Path.GetFullPath(path);
        if (!IsSupported(fullPath))
        {
            throw new ArgumentException(
                $"'{Path.GetExtension(fullPath)}' files are not supported ({fullPath}); Heed reads {string.Join(", ", Extensions)}.",
                nameof(path));
        }
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException($"No file at {fullPath}; check the path.", fullPath);
        }
        return fullPath;
    }

    /// <summary>The first "# " heading within the first few KB of a Markdown file.</summary>
    private static string? MarkdownTitle(string path)
    {
        (TextReader reader, _) = TextFileReader.Open(path);
        using (reader)
        {
            char[] buffer = new char[MarkdownTitleScanChars];
            int n = reader.ReadBlock(buffer, 0, buffer.Length);
            foreach (string line in new string(buffer, 0, n).Split('\n'))
            {
                string trimmed = line.Trim();
                if (trimmed.StartsWith("# ", StringComparison.Ordinal) && trimmed.Length > 2)
                {
                    return trimmed[2..].Trim();
                }
            }
            return null;
        }
    }
}
