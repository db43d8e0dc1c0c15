using System.Text;

namespace Heed.Cli.Bench;

/// <summary>
/// Needle-in-a-haystack documents: filler sentences with one pass key sentence at a chosen depth,
/// as in the passkey retrieval tests of the long-context literature. Deterministic per seed.
/// </summary>
internal static class Haystack
{
    private static readonly string[] Filler =
    [
        "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.",
        "A package manager installs software and keeps track of the files that belong to each package.",
        "The manual page describes the options of the command and the files it reads at start-up.",
        "Configuration files live under the etc directory and are read when the service starts.",
        "The kernel schedules processes, manages memory and talks to the hardware through drivers.",
        "A shell reads commands from the terminal, expands variables and runs programs for the user.",
        "Documentation is written so that a new user can follow the steps without outside help.",
    ];

    public static string PassKeySentence(int key) => $"The pass key is {key}. Remember it. {key} is the pass key.";

    public const string Question = "What is the pass key?";

    /// <summary>A text of about <paramref name="approxChars"/> characters with the needle at <paramref name="depth"/> (0..1).</summary>
    public static string Build(int approxChars, double depth, int key, int seed)
    {
        var random = new Random(seed);
        var text = new StringBuilder(approxChars + 256);
        int needleAt = (int)(approxChars * depth);
        bool placed = false;
        while (text.Length < approxChars)
        {
            if (!placed && text.Length >= needleAt)
            {
                text.Append(PassKeySentence(key)).Append(' ');
                placed = true;
            }
            text.Append(Filler[random.Next(Filler.Length)]).Append(' ');
        }
        if (!placed)
        {
            text.Append(PassKeySentence(key));
        }
        return text.ToString();
    }
}
