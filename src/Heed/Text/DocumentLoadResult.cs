namespace Heed.Text;

/// <summary>What loading one file gave: the document, or the reason it was skipped.</summary>
/// <param name="Document">The loaded document; null when skipped.</param>
/// <param name="Skipped">Why the file was skipped; null when loaded.</param>
public sealed record DocumentLoadResult(LoadedDocument? Document, SkippedFile? Skipped);
