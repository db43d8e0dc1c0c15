namespace Heed.Cli.Bench;

/// <summary>
/// Synthetic documents for the RAG load bench: made-up entities with one fact each; a query asks
/// for one entity's fact, and exactly one passage answers it. Deterministic per seed. (Quality is
/// measured on the held-out set instead: this one is lexical, BM25 answers it perfectly.)
/// </summary>
internal static class RerankSet
{
    public sealed record Case(string Query, IReadOnlyList<string> Passages, int Relevant);

    private static readonly string[] Attributes = ["favourite colour", "home town", "lucky number", "pet's name", "first job"];
    private static readonly string[] Values =
        ["green", "Oslo", "seventeen", "Biscuit", "baker", "purple", "Lima", "forty-two", "Pepper", "pilot", "amber", "Kyoto", "nine", "Mochi", "sailor"];

    public static IReadOnlyList<Case> Build(int cases, int passages, int seed)
    {
        var random = new Random(seed);
        var result = new List<Case>(cases);
        for (int c = 0; c < cases; c++)
        {
            string attribute = Attributes[random.Next(Attributes.Length)];
            var names = new HashSet<string>();
            while (names.Count < passages)
            {
                names.Add(Name(random));
            }
            string[] people = names.ToArray();
            string[] texts = people.Select(p => $"{p}'s {attribute} is {Values[random.Next(Values.Length)]}. {p} mentioned it once at lunch.").ToArray();
            int relevant = random.Next(passages);
            result.Add(new Case($"What is {people[relevant]}'s {attribute}?", texts, relevant));
        }
        return result;
    }

    private static string Name(Random random)
    {
        const string consonants = "bdfgklmnprstvz", vowels = "aeiou";
        int syllables = 2 + random.Next(2);
        var name = new char[syllables * 2];
        for (int i = 0; i < syllables; i++)
        {
            name[2 * i] = consonants[random.Next(consonants.Length)];
            name[2 * i + 1] = vowels[random.Next(vowels.Length)];
        }
        name[0] = char.ToUpperInvariant(name[0]);
        return new string(name);
    }
}
