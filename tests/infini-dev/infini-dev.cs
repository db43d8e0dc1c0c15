#:project ../../src/Heed/Heed.csproj
// Development harness for InfiniRetri (not a test, not shipped): plants needles from the held-out
// development split (models/heldout/dev) in haystacks of development prose and reports, per length,
// how often the needle's sentence is in the final evidence, ranks first, and is judged found; and on
// the same haystacks without a needle, how often retrieval (wrongly) says found. Settings of the
// retriever are chosen on this split only; the test split is for the evaluation bench.
//
//   dotnet run tests/infini-dev/infini-dev.cs -- --model models/heed-tiny.gguf --lengths 8000,32000 --trials 11 [--layer L] [--topk K]
//       [--threshold T] [--without-needle no] [--from FIRST_TRIAL]
using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using Heed.Llama;
using Heed.Retrieval;

var arguments = args.Select((a, i) => (a, i)).Where(p => p.a.StartsWith("--")).ToDictionary(p => p.a[2..], p => args[p.i + 1]);
string Arg(string name, string fallback) => arguments.GetValueOrDefault(name, fallback);
string root = Arg("root", ".");
string modelPath = Arg("model", Path.Combine(root, "models", "heed-tiny.gguf"));
int[] lengths = Arg("lengths", "8000,32000").Split(',').Select(int.Parse).ToArray();
int trials = int.Parse(Arg("trials", "12"));
int context = int.Parse(Arg("context", "2048"));
int layer = int.Parse(Arg("layer", "-1"));
int topK = int.Parse(Arg("topk", "32"));
double threshold = double.Parse(Arg("threshold", "0"), System.Globalization.CultureInfo.InvariantCulture);
bool withoutNeedle = Arg("without-needle", "yes") == "yes"; // also run each haystack without its needle (for "not found")
string dev = Path.Combine(root, Arg("data", "models/heldout/dev"));

List<string> paragraphs = ReadParagraphs(Path.Combine(dev, "docs.jsonl.gz"));
List<Needle> needles = ReadNeedles(dev);
using LlamaModel model = LlamaModel.Load(modelPath, new LlamaModelOptions { GpuLayers = 0 });
using var retriever = new InfiniteRetriever(model, new InfiniteRetrieverOptions
{
    ContextSize = context, Layer = layer, TopKTokens = topK, NotFoundThreshold = threshold,
});
Console.WriteLine($"model {Path.GetFileName(modelPath)}, layer {retriever.Layer}, context {context}, top-K {topK}, " +
                  $"{paragraphs.Count} dev paragraphs, {needles.Count} dev needles");
double charsPerToken = paragraphs.Take(200).Sum(p => p.Length) / (double)paragraphs.Take(200).Sum(p => model.Tokenizer.CountTokens(p));
var clock = Stopwatch.StartNew();
var scoresWith = new List<double>();
var scoresWithout = new List<double>();
Console.WriteLine("tokens  trials  in-evidence  ranked-first  found(needle)  found(no needle)  evidence from last third  s/trial");
foreach (int length in lengths)
{
    int inEvidence = 0, first = 0, foundWith = 0, foundWithout = 0;
    double lastThird = 0, seconds = 0;
    for (int t = int.Parse(Arg("from", "0")); t < trials; t++)
    {
        var random = new Random(1000 * length + t);
        Needle needle = needles[t % needles.Count];
        (List<string> statements, string[] answers) = needle.Fill(random);
        double depth = (t + 0.5) / trials; // every trial its own depth, spread over the document
        List<string> haystack = Haystack(random, (int)(length * charsPerToken));
        foreach (string distractor in needle.Distractors)
        {
            haystack.Insert(random.Next(haystack.Count + 1), distractor);
        }
        string without = string.Join("\n\n", haystack);
        if (needle.Form == "multi")
        {
            foreach (string statement in statements)
            {
                haystack.Insert(random.Next(haystack.Count + 1), statement);
            }
        }
        else
        {
            haystack.Insert((int)(depth * haystack.Count), string.Join(" ", statements));
        }
        string with = string.Join("\n\n", haystack);
        var started = Stopwatch.StartNew();
        RetrievalResult result = await retriever.RetrieveAsync(needle.Question, with);
        seconds += started.Elapsed.TotalSeconds;
        bool Holds(Evidence e) => answers.Any(a => e.Text.Contains(a, StringComparison.Ordinal));
        bool hit = answers.All(a => result.Evidence.Any(e => e.Text.Contains(a, StringComparison.Ordinal)));
        inEvidence += hit ? 1 : 0;
        Evidence best = result.Evidence.MaxBy(e => e.Score)!;
        first += Holds(best) ? 1 : 0;
        foundWith += hit && result.Found ? 1 : 0;
        scoresWith.Add(hit ? result.Evidence.Where(Holds).Max(e => e.Score) : double.NaN);
        lastThird += result.Evidence.Count(e => e.Offset > 2 * with.Length / 3) / (double)Math.Max(1, result.Evidence.Count);
        string withoutReport = "";
        if (withoutNeedle)
        {
            RetrievalResult empty = await retriever.RetrieveAsync(needle.Question, without);
            foundWithout += empty.Found ? 1 : 0;
            scoresWithout.Add(empty.Evidence.Max(e => e.Score));
            withoutReport = $"; without it: found {empty.Found}, best score {scoresWithout[^1]:E2}";
        }
        Console.Error.WriteLine($"  {length} #{t} {needle.Form}: in evidence {hit}, first {Holds(best)}, found {result.Found}, " +
                                $"needle score {scoresWith[^1]:E2}, best score {best.Score:E2}{withoutReport}");
    }
    Console.WriteLine($"{length,6}  {trials,6}  {inEvidence,11}  {first,12}  {foundWith,13}  {foundWithout,16}  {lastThird / trials,24:P0}  {seconds / trials,7:F1}");
}
Console.WriteLine($"best needle score  (when in evidence): {Quantiles(scoresWith.Where(double.IsFinite))}");
Console.WriteLine($"best score, no needle               : {Quantiles(scoresWithout)}");
Console.WriteLine($"{clock.Elapsed.TotalSeconds:F0} s");

static string Quantiles(IEnumerable<double> values)
{
    double[] v = values.Order().ToArray();
    return v.Length == 0 ? "-" : string.Join("  ", new[] { 0, 0.1, 0.25, 0.5, 0.75, 0.9, 1 }.Select(q => $"q{q * 100:F0}={v[(int)Math.Round(q * (v.Length - 1))]:E2}"));
}

List<string> Haystack(Random random, int chars)
{
    var picked = new List<string>();
    int total = 0;
    while (total < chars)
    {
        string p = paragraphs[random.Next(paragraphs.Count)];
        picked.Add(p);
        total += p.Length + 2;
    }
    return picked;
}

static List<string> ReadParagraphs(string path)
{
    using var reader = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
    var paragraphs = new List<string>();
    while (reader.ReadLine() is { } line)
    {
        paragraphs.AddRange(JsonDocument.Parse(line).RootElement.GetProperty("paragraphs").EnumerateArray()
            .Select(p => p.GetString()!).Where(p => p.Length > 40));
    }
    return paragraphs;
}

static List<Needle> ReadNeedles(string dev)
{
    using JsonDocument json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dev, "needles.json")));
    return json.RootElement.EnumerateArray().Select(n => new Needle(
        n.GetProperty("form").GetString()!,
        n.GetProperty("sentences").EnumerateArray().Select(s => s.GetString()!).ToArray(),
        n.GetProperty("question").GetString()!,
        n.GetProperty("slots").EnumerateObject().ToDictionary(s => s.Name, s => s.Value.Clone()),
        n.GetProperty("distractors").EnumerateArray().Select(s => s.GetString()!).ToArray())).ToList();
}

// A needle template from needles.json: {slot}s filled from a list, or "digits:N", "code:LL-DDDD" (L letter, D digit), "date".
record Needle(string Form, string[] Sentences, string Question, Dictionary<string, JsonElement> Slots, string[] Distractors)
{
    public (List<string> Statements, string[] Answers) Fill(Random random)
    {
        var values = Slots.ToDictionary(s => s.Key, s => Value(s.Value, random));
        List<string> statements = Sentences.Select(s => values.Aggregate(s, (text, v) => text.Replace("{" + v.Key + "}", v.Value))).ToList();
        return (statements, values.Values.ToArray());
    }

    private static string Value(JsonElement slot, Random random)
    {
        if (slot.ValueKind == JsonValueKind.Array)
        {
            return slot[random.Next(slot.GetArrayLength())].GetString()!;
        }
        string kind = slot.GetString()!;
        if (kind.StartsWith("digits:"))
        {
            int n = int.Parse(kind[7..]);
            return random.Next(1, 10) + string.Concat(Enumerable.Range(1, n - 1).Select(_ => random.Next(10)));
        }
        if (kind.StartsWith("code:"))
        {
            return string.Concat(kind[5..].Select(c => c switch { 'L' => (char)('A' + random.Next(26)), 'D' => (char)('0' + random.Next(10)), _ => c }));
        }
        string[] months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
        return $"{random.Next(1, 29)} {months[random.Next(12)]} {random.Next(1990, 2030)}";
    }
}
