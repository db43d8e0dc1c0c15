using Heed.Attention;
using Heed.Llama;

namespace Heed.Retrieval;

/// <summary>
/// Finds the layer whose question attention best picks out a planted fact. Retrieval heads sit in
/// different layers in different models, and the last layer (the paper's choice for its models)
/// can be far from the best in a small one. A layer chosen on one sentence template finds that
/// template, so the probe plants facts of several kinds (counts, codes, places, dates, colours,
/// people, times, hiding places), each stated in its own words and asked about in other words, at
/// random places in everyday filler (two documents, each holding one fact of every kind, so each
/// question has the other facts as distractors), and scores every layer the way the retriever
/// does: the fact sentence's rank among the document's sentences by calibrated phrase score. The
/// layer with the best mean reciprocal rank wins (ties: the larger mean margin over the runner-up).
/// </summary>
internal static class RetrievalLayerProbe
{
    // {0}: a made-up name, {1}: the value. Statement and question share the name, never the value's wording.
    private static readonly (string Statement, string Question, string[] Values)[] FactKinds =
    [
        ("{0} keeps {1} goats on the farm above the village.", "How many animals does {0} own?", ["37", "112", "9", "64"]),
        ("The storeroom at {0} opens only with the code {1}.", "What must be typed to get into the storeroom at {0}?", ["K7-204", "QX-518", "M3-990"]),
        ("After the flood, {0} settled in {1} for good.", "Which town did {0} move to?", ["Harrowgate", "Lindqvist Bay", "Old Tarrin"]),
        ("This year the {0} fair was moved to the {1}.", "On what day is the {0} fair held?", ["ninth of March", "second of June", "last day of October"]),
        ("Last summer {0} painted the rowing boat a bright {1}.", "What colour is the boat that belongs to {0}?", ["orange", "violet", "turquoise"]),
        ("Since the vote, the choir of {0} has been led by {1}.", "Who is in charge of the {0} choir?", ["Ilse Marrow", "Tobias Venn", "Grete Oakes"]),
        ("The ferry out of {0} leaves at {1} each morning.", "When does the morning boat from {0} depart?", ["6:40", "7:15", "5:55"]),
        ("{0} hides the spare keys inside the {1}.", "Where are the extra keys of {0} kept?", ["blue tin under the stairs", "hollow garden gnome", "old piano bench"]),
    ];

    private static readonly string[] Names = ["Aldwyn", "Brisca", "Corvane", "Dunmere", "Elsbeth", "Farrowby", "Gwynna", "Holloway", "Ivetta", "Jorvale"];

    private static readonly string[] Filler =
    [
        "The bakery on the corner sells bread until noon.", "Rain is expected over the hills later in the week.",
        "Most of the tables in the hall were carried outside.", "A tall hedge separates the two gardens.",
        "The children walked to school along the river path.", "Someone left a bicycle leaning against the fence.",
        "The library closes early on public holidays.", "Fresh paint makes the old kitchen look larger.",
        "A few clouds drifted slowly across the afternoon sky.", "The market draws visitors from the nearby towns.",
        "Tea was served in the garden after the meeting.", "The road to the coast winds through pine forest.",
        "An old clock ticks loudly in the front room.", "The neighbours planted tomatoes along the south wall.",
        "Letters arrive twice a day in the winter months.", "A narrow bridge crosses the stream near the mill.",
        "The museum keeps a collection of wooden toys.", "Snow rarely settles in the lower valley.",
        "The workshop smells of sawdust and linseed oil.", "Most evenings the square fills with music.",
    ];

    private const int Documents = 2;

    public static int FindLayer(IInferenceEngine model, LlamaContextOptions contextOptions)
    {
        var random = new Random(20251);
        int[] neutral = model.Tokenizer.Tokenize(string.Format(InfiniteRetriever.QuestionFormat, InfiniteRetriever.CalibrationQuestion), addSpecial: false);
        var documents = Enumerable.Range(0, Documents).Select(_ => Plant(model, random)).ToList();
        int longest = documents.Max(d => d.Context.Length + Math.Max(d.Questions.Max(q => q.Length), neutral.Length));
        using var capture = new AttentionCapture(model, null, contextOptions with
        {
            ContextSize = longest + 16, BatchSize = 512, MicroBatchSize = Math.Min(512, contextOptions.MicroBatchSize),
        }, new AttentionCaptureOptions { ScoresOnly = true });
        int layers = capture.Layers.Count;
        double[] reciprocalRank = new double[layers], margin = new double[layers];
        foreach (ProbeDocument document in documents)
        {
            // One read of the document serves every question about it (the tails differ only).
            capture.Clear();
            capture.Evaluate(document.Context, keepQueries: false, keepKeys: true);
            int start = capture.NextPosition;
            double[][] unasked = TokenShares(capture, neutral, start);
            for (int f = 0; f < document.Questions.Length; f++)
            {
                capture.RemoveTokens(start);
                double[][] asked = TokenShares(capture, document.Questions[f], start);
                for (int l = 0; l < layers; l++)
                {
                    double[] calibrated = asked[l].Zip(unasked[l], (a, u) => a - u).ToArray();
                    calibrated[0] = 0; // BOS, the attention sink
                    double[] sentence = InfiniteRetriever.SentenceScores(InfiniteRetriever.PhraseScores(calibrated, 3), document.Spans);
                    int factIndex = document.FactIndices[f];
                    double fact = sentence[factIndex];
                    reciprocalRank[l] += 1.0 / (1 + sentence.Count(s => s > fact));
                    margin[l] += fact - sentence.Where((_, i) => i != factIndex).Max();
                }
            }
        }
        int best = Enumerable.Range(0, layers).OrderByDescending(l => reciprocalRank[l]).ThenByDescending(l => margin[l]).First();
        return capture.Layers[best];
    }

    // Everyday filler with one fact of every kind at random places; the other facts are distractors for each question.
    private sealed record ProbeDocument(int[] Context, (int Start, int Length)[] Spans, int[] FactIndices, int[][] Questions);

    private static ProbeDocument Plant(IInferenceEngine model, Random random)
    {
        List<string> sentences = [.. Filler.OrderBy(_ => random.Next())];
        string[] names = [.. Names.OrderBy(_ => random.Next()).Take(FactKinds.Length)];
        var facts = new List<string>();
        var questions = new List<int[]>();
        for (int k = 0; k < FactKinds.Length; k++)
        {
            (string statement, string question, string[] values) = FactKinds[k];
            facts.Add(string.Format(statement, names[k], values[random.Next(values.Length)]));
            sentences.Insert(random.Next(1, sentences.Count + 1), facts[k]);
            questions.Add(model.Tokenizer.Tokenize(string.Format(InfiniteRetriever.QuestionFormat, string.Format(question, names[k])), addSpecial: false));
        }
        var context = new List<int> { model.Tokenizer.BeginningOfSequence };
        var spans = new (int Start, int Length)[sentences.Count];
        for (int i = 0; i < sentences.Count; i++)
        {
            int[] ids = model.Tokenizer.Tokenize(" " + sentences[i], addSpecial: false); // as the retriever tokenizes sentences
            spans[i] = (context.Count, ids.Length);
            context.AddRange(ids);
        }
        return new ProbeDocument(context.ToArray(), spans, facts.Select(f => sentences.IndexOf(f)).ToArray(), questions.ToArray());
    }

    private static double[][] TokenShares(AttentionCapture capture, int[] tail, int start)
    {
        capture.Evaluate(tail, keepQueries: true, keepKeys: true);
        return capture.Layers.Select(layer => InfiniteRetriever.TokenShares(capture, layer, tail.Length, start, AttentionDevice.Cpu)).ToArray();
    }
}
