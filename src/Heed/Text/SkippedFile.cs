namespace Heed.Text;

/// <summary>A file that was not indexed, and why.</summary>
/// <param name="Path">The full path of the file.</param>
/// <param name="Reason">Why it was skipped, in words (e.g. "binary file: NUL byte at offset 12").</param>
public sealed record SkippedFile(string Path, string Reason);
