using Heed.Attention;
using Heed.Llama;

namespace Heed.Retrieval;

/// <summary>
/// Finds the layer whose question attention best picks out a planted fact: a short filler text
/// with one pass key, the question after it, and per layer the share of the question's
/// (calibrated) attention that lands on the key's tokens. Retrieval heads sit in different
/// layers in different models, and the last layer (the paper's choice for its models) can be
/// far from the best in a small one. One forward pass per model.
/// </summary>
internal static class RetrievalLayerProbe
{
    private const string Filler = "The package manager keeps track of installed files. The manual page lists the options of each command. ";

    public static int FindLayer(IInferenceEngine model, string questionFormat, LlamaContextOptions contextOptions)
    {
        const int key = 50721;
        string document = string.Concat(Enumerable.Repeat(Filler, 6)) + $"The pass key is {key}. Remember it. " +
                          string.Concat(Enumerable.Repeat(Filler, 6));
        int[] context = model.Tokenizer.Tokenize(document);
        int[] keyTokens = model.Tokenizer.Tokenize($" {key}", addSpecial: false);
        int keyStart = IndexOf(context, keyTokens);
        if (keyStart < 0)
        {
            return model.LayerCount - 1;
        }
        int[] question = model.Tokenizer.Tokenize(string.Format(questionFormat, "What is the pass key?"), addSpecial: false);
        int[] neutral = model.Tokenizer.Tokenize(string.Format(questionFormat, "N/A"), addSpecial: false);
        using var capture = new AttentionCapture(model, null, contextOptions with
        {
            ContextSize = context.Length + Math.Max(question.Length, neutral.Length) + 16,
            BatchSize = 512, MicroBatchSize = Math.Min(512, contextOptions.MicroBatchSize),
        });
        capture.Evaluate(context, keepQueries: false, keepKeys: true);
        int start = capture.NextPosition;
        double[][] asked = Shares(capture, question, start, keyStart, keyTokens.Length);
        capture.RemoveTokens(start);
        double[][] unasked = Shares(capture, neutral, start, keyStart, keyTokens.Length);
        int best = model.LayerCount - 1;
        double bestGain = double.MinValue;
        for (int i = 0; i < capture.Layers.Count; i++)
        {
            double gain = asked[i][0] - unasked[i][0];
            if (gain > bestGain)
            {
                (best, bestGain) = (capture.Layers[i], gain);
            }
        }
        return best;
    }

    // Per layer: the share of the tail's attention to the context that lands on the key.
    private static double[][] Shares(AttentionCapture capture, int[] tail, int start, int keyStart, int keyLength)
    {
        capture.Evaluate(tail, keepQueries: true, keepKeys: true);
        var shares = new double[capture.Layers.Count][];
        for (int i = 0; i < capture.Layers.Count; i++)
        {
            float[] mass = capture.Aggregate(capture.Layers[i], start);
            double onKey = 0, onContext = 0;
            for (int j = 1; j < start; j++) // position 0 (BOS) is the attention sink
            {
                onContext += mass[j];
                onKey += j >= keyStart && j < keyStart + keyLength ? mass[j] : 0;
            }
            shares[i] = [onContext > 0 ? onKey / onContext : 0];
        }
        return shares;
    }

    private static int IndexOf(int[] haystack, int[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle))
            {
                return i;
            }
        }
        return -1;
    }
}
