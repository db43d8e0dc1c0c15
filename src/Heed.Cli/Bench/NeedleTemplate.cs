using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Heed.Cli.Bench;

/// <summary>
/// A needle template from needles.json: sentences with {slot} holes, a question worded unlike
/// them, and distractor sentences that share the question's words but do not answer it. A slot
/// is a list of values or a generator: "digits:N", "code:PATTERN" (L a capital letter, D a
/// digit, anything else kept), or "date".
/// </summary>
internal sealed partial record NeedleTemplate(
    string Form, IReadOnlyList<string> Sentences, string Question, IReadOnlyDictionary<string, JsonElement> Slots, IReadOnlyList<string> Distractors)
{
    private static readonly string[] Months =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    [GeneratedRegex(@"\{(\w+)\}")]
    private static partial Regex Hole();

    /// <summary>Multi-needle templates place each sentence apart; the others keep their sentences together.</summary>
    public bool PlacedApart => Form == "multi";

    public void Validate(string path)
    {
        string what = $"{path}: template \"{Question}\"";
        if (string.IsNullOrWhiteSpace(Form) || string.IsNullOrWhiteSpace(Question) || Sentences is not { Count: > 0 } || Slots is not { Count: > 0 }
            || Distractors is null)
        {
            throw new InvalidOperationException($"{what} needs form, sentences, question, slots and distractors.");
        }
        var holes = Sentences.SelectMany(s => Hole().Matches(s)).Select(m => m.Groups[1].Value).ToHashSet();
        if (!holes.SetEquals(Slots.Keys))
        {
            throw new InvalidOperationException($"{what}: the sentences' holes ({string.Join(",", holes)}) and the slots ({string.Join(",", Slots.Keys)}) differ.");
        }
        foreach ((string name, JsonElement slot) in Slots)
        {
            bool valid = slot.ValueKind == JsonValueKind.Array
                ? slot.GetArrayLength() > 0 && slot.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0)
                : slot.ValueKind == JsonValueKind.String && IsGenerator(slot.GetString()!);
            if (!valid)
            {
                throw new InvalidOperationException($"{what}: slot {name} is neither a list of values nor digits:N, code:PATTERN or date.");
            }
        }
    }

    private static bool IsGenerator(string spec) =>
        spec == "date"
        || (spec.StartsWith("digits:", StringComparison.Ordinal) && int.TryParse(spec[7..], CultureInfo.InvariantCulture, out int n) && n is > 0 and < 10)
        || (spec.StartsWith("code:", StringComparison.Ordinal) && spec.Length > 5);

    /// <summary>The template with every slot filled by a value drawn from <paramref name="random"/>.</summary>
    public Needle Fill(Random random)
    {
        Dictionary<string, string> values = Slots.ToDictionary(kv => kv.Key, kv => Draw(kv.Value, random));
        string[] sentences = Sentences.Select(s => Hole().Replace(s, m => values[m.Groups[1].Value])).ToArray();
        return new Needle(this, sentences, [.. values.Values]);
    }

    private static string Draw(JsonElement slot, Random random)
    {
        if (slot.ValueKind == JsonValueKind.Array)
        {
            return slot[random.Next(slot.GetArrayLength())].GetString()!;
        }
        string spec = slot.GetString()!;
        if (spec == "date")
        {
            return $"{random.Next(1, 29)} {Months[random.Next(12)]} {random.Next(2024, 2040)}";
        }
        if (spec.StartsWith("digits:", StringComparison.Ordinal))
        {
            int digits = int.Parse(spec[7..], CultureInfo.InvariantCulture);
            return string.Concat(Enumerable.Range(0, digits).Select(i => (char)('0' + (i == 0 ? random.Next(1, 10) : random.Next(10)))));
        }
        return string.Concat(spec[5..].Select(c => c switch
        {
            'L' => (char)('A' + random.Next(26)),
            'D' => (char)('0' + random.Next(10)),
            _ => c,
        }));
    }
}

/// <summary>A filled template: the sentences to hide and the values an answer must contain.</summary>
internal sealed record Needle(NeedleTemplate Template, IReadOnlyList<string> Sentences, IReadOnlyList<string> Values)
{
    /// <summary>Found when the answer holds every value (case aside).</summary>
    public bool FoundIn(string answer) => Values.All(v => answer.Contains(v, StringComparison.OrdinalIgnoreCase));
}
