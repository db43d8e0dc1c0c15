using Heed.Attention;
using Heed.Llama;
using Heed.Ranking;

namespace Heed.Tests.Ranking;

[Collection(TinyModelCollection.Name)]
public sealed class InContextRerankerTests(TinyModelFixture fixture)
{
    private static readonly string[] Documents =
    [
        "the quick brown fox jumps over the lazy dog .",
        "the pass key is 48213 . remember the pass key .",
        "attention finds the answer in the context .",
        "retrieval ranks the documents by the mass the query gives them .",
    ];

    private const string Instruction = "Here are some paragraphs:";
    private const string QueryInstruction = "Please find information that is relevant to the following query in the paragraphs above.";

    private InContextReranker Create(int contextSize = 256, bool half = false, bool paperConvention = false,
        AttentionDevice device = AttentionDevice.Cpu) => new(fixture.Model,
        new InContextRerankerOptions
        {
            ContextSize = contextSize, StoreHalfPrecision = half, UsePaperConvention = paperConvention, Device = device,
            Instruction = Instruction, QueryInstruction = QueryInstruction, CalibrationQuery = "N/A",
            // Flash attention off, as llama.cpp's reference softmax needs, so both see the same hidden states.
            ContextOptions = new LlamaContextOptions
            {
                Threads = 2, FlashAttention = FlashAttentionMode.Disabled, KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
            },
        });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ScoresEqualThePapersFormulaOnLlamaCppsOwnSoftmax(bool paperConvention)
    {
        const string query = "what is the pass key ?";
        using InContextReranker reranker = Create(paperConvention: paperConvention);
        IReadOnlyList<RankedDocument> ranked = await reranker.RerankAsync(query, Documents);
        Assert.Equal(Enumerable.Range(0, Documents.Length), ranked.Select(r => r.Index).Order());

        // The prompt, laid out here from its pieces: BOS and the instruction (the tiny model's chat
        // template is not one llama.cpp knows, so the prompt is plain text), "\n\n[k] document" each,
        // then the query instruction, "Query:" and the query.
        Tokenizer tokenizer = fixture.Model.Tokenizer;
        var window = new List<int>(tokenizer.Tokenize(Instruction));
        Assert.Equal(tokenizer.BeginningOfSequence, window[0]);
        var spans = new List<(int Start, int Length)>();
        for (int k = 0; k < Documents.Length; k++)
        {
            int[] delimiter = tokenizer.Tokenize($"\n\n[{k + 1}]", addSpecial: false);
            int[] document = tokenizer.Tokenize($"\n\n[{k + 1}] {Documents[k]}", addSpecial: false);
            Assert.Equal(delimiter, document[..delimiter.Length]);
            // The authors score the delimiter with the document; Heed scores the document's own tokens.
            int skip = paperConvention ? 0 : delimiter.Length;
            spans.Add((window.Count + skip, document.Length - skip));
            window.AddRange(document);
        }
        string instructionText = $"\n\n{QueryInstruction}\n\nQuery:";
        int[] instruction = tokenizer.Tokenize(instructionText, addSpecial: false);
        int[] queryTail = tokenizer.Tokenize($"{instructionText} {query}", addSpecial: false);
        int[] calibrationTail = tokenizer.Tokenize($"{instructionText} N/A", addSpecial: false);
        Assert.Equal(instruction, queryTail[..instruction.Length]);
        Assert.Equal(instruction, calibrationTail[..instruction.Length]);
        Assert.NotEqual(queryTail[instruction.Length], calibrationTail[instruction.Length]);
        // The authors read every row of the tail; Heed only the rows after the instruction both tails share.
        int rowsStart = paperConvention ? 0 : instruction.Length;

        // Per position: llama.cpp's own softmax (flash attention off), summed over layers and
        // heads, averaged over the rows read.
        double[] Attention(int[] tail)
        {
            using var capture = new AttentionCapture(fixture.Model, null,
                new LlamaContextOptions
                {
                    ContextSize = 256, BatchSize = 256, MicroBatchSize = 256, Threads = 2, FlashAttention = FlashAttentionMode.Disabled,
                    KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
                },
                new AttentionCaptureOptions { ReferenceSoftmax = true });
            capture.Evaluate(window.ToArray(), false, true);
            if (rowsStart > 0)
            {
                capture.Evaluate(tail[..rowsStart], false, true);
            }
            capture.Evaluate(tail[rowsStart..], true, true);
            int rows = tail.Length - rowsStart;
            double[] total = new double[window.Count];
            foreach (int layer in capture.Layers)
            {
                double[] mass = capture.ReferenceMass(layer);
                for (int j = 0; j < total.Length; j++)
                {
                    total[j] += mass[j] / rows;
                }
            }
            return total;
        }
        double[] attention = Attention(queryTail), calibration = Attention(calibrationTail);

        // The paper's score: per token, query attention minus calibration attention; tokens below
        // mean - 2 sample std of the document's calibrated values are masked; the rest are summed.
        for (int k = 0; k < Documents.Length; k++)
        {
            double[] calibrated = Enumerable.Range(spans[k].Start, spans[k].Length).Select(t => attention[t] - calibration[t]).ToArray();
            double mean = calibrated.Average();
            double std = Math.Sqrt(calibrated.Sum(c => (c - mean) * (c - mean)) / (calibrated.Length - 1));
            double expected = calibrated.Where(c => c > mean - 2 * std).Sum();
            double actual = ranked.Single(r => r.Index == k).Score;
            Assert.True(Math.Abs(expected - actual) <= 1e-4 * Math.Max(1, Math.Abs(expected)), $"document {k}: {actual} vs reference {expected}");
        }
    }

    [Fact]
    public void CalibrationDropsOutlierTokensAndSubtractsTheBias()
    {
        // calibrated = [0.2, 0.1, 0.3, -5.0]: mean -1.1, sample std 2.6; threshold -6.3 keeps all.
        Assert.Equal(-4.4, InContextReranker.CalibratedScore([1.2, 1.1, 1.3, -4.0], [1.0, 1.0, 1.0, 1.0]), 9);
        // Ten tokens at 1.0 and one at -20: mean -0.909…, std 6.33…, threshold -13.57: -20 is dropped.
        double[] attention = [.. Enumerable.Repeat(2.0, 10), -19.0];
        double[] calibration = [.. Enumerable.Repeat(1.0, 11)];
        Assert.Equal(10.0, InContextReranker.CalibratedScore(attention, calibration), 9);
        Assert.Equal(0.5, InContextReranker.CalibratedScore([0.75], [0.25]), 9);
    }

    [Fact]
    public async Task TopKAndOrder()
    {
        using InContextReranker reranker = Create(half: true);
        IReadOnlyList<RankedDocument> top = await reranker.RerankAsync("the pass key", Documents, topK: 2);
        Assert.Equal(2, top.Count);
        Assert.True(top[0].Score >= top[1].Score);
    }

    [Fact]
    public async Task BadInput()
    {
        using InContextReranker reranker = Create(contextSize: 64);
        await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("", Documents));
        await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("  ", Documents));
        await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("key", []));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("key", ["fine", "   "]));
        Assert.Contains("Document 1", e.Message);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => reranker.RerankAsync("key", Documents, topK: 0));
        string longQuery = string.Join(" ", Enumerable.Repeat("what is the pass key", 40));
        e = await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync(longQuery, Documents));
        Assert.Contains("context of", e.Message);
        string longDocument = string.Join(" ", Enumerable.Repeat("the lazy dog", 60));
        e = await Assert.ThrowsAsync<ArgumentException>(() => reranker.RerankAsync("key", [longDocument]));
        Assert.Contains("Split it", e.Message);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reranker.RerankAsync("key", Documents, null, cts.Token));
    }
}
