using Heed.Tests.Rag;

namespace Heed.Tests.Storage;

/// <summary>
/// Deterministic documents on distinct topics, each file naming one made-up place, so that a query has a known answer
/// (the file of that place) and topic queries have a few plausible ones.
/// </summary>
internal static class TopicCorpus
{
    private static readonly string[][] Topics =
    [
        ["orchard", "apple", "pear", "harvest", "blossom", "cider"],
        ["engine", "piston", "crankshaft", "fuel", "truck", "gearbox"],
        ["volcano", "magma", "lava", "crater", "eruption", "basalt"],
        ["glacier", "iceberg", "snowfield", "moraine", "crevasse", "fjord"],
        ["telescope", "galaxy", "nebula", "comet", "orbit", "planet"],
        ["violin", "orchestra", "symphony", "concerto", "melody", "rhythm"],
        ["compiler", "parser", "bytecode", "register", "linker", "optimizer"],
        ["bakery", "dough", "oven", "flour", "yeast", "pastry"],
    ];

    private static readonly string[] Places = ["Quorvale", "Brindlemoor", "Tessaluna", "Orrinford", "Calvaspire", "Dunmerrow",
        "Feldranth", "Yselgard", "Marrowdeep", "Pellucine", "Vantoria", "Grisholme"];

    /// <summary>The made-up place named in file <paramref name="index"/>.</summary>
    public static string Place(int index) => Places[index % Places.Length] + (index / Places.Length == 0 ? "" : $"{index / Places.Length}");

    /// <summary>The relative path of file <paramref name="index"/>.</summary>
    public static string FileName(int index) => Path.Combine(index % 3 == 0 ? "deep" : "", $"topic-{index:D3}.txt");

    /// <summary>The topic words of file <paramref name="index"/>.</summary>
    public static string[] TopicOf(int index) => Topics[index % Topics.Length];

    /// <summary>Writes <paramref name="count"/> files of about <paramref name="paragraphs"/> paragraphs under a subfolder.</summary>
    public static void Write(TempFolder folder, string subfolder, int count, int paragraphs = 6)
    {
        for (int i = 0; i < count; i++)
        {
            folder.Write(Path.Combine(subfolder, FileName(i)), Text(i, paragraphs));
        }
    }

    public static string Text(int index, int paragraphs)
    {
        string[] words = TopicOf(index);
        var random = new Random(index);
        var text = new System.Text.StringBuilder();
        for (int p = 0; p < paragraphs; p++)
        {
            for (int s = 0; s < 4; s++)
            {
                string a = words[random.Next(words.Length)], b = words[random.Next(words.Length)];
                text.Append(s == 0 && p == paragraphs / 2
                    ? $"The town of {Place(index)} is known for its {a}. "
                    : $"Every {a} in the story meets a {b} near the river. ");
            }
            text.Append("\n\n");
        }
        return text.ToString();
    }
}
