using Heed.Llama;
using Heed.Ranking;

namespace Heed.Tests.ShippedModel;

/// <summary>
/// In-context re-ranking with the shipped model on operations prose: the answering passage must
/// come first wherever it sits, for short and long queries, and however the set is cut into
/// windows. The other passages share the query's words, so copying a word the query names is not enough.
/// </summary>
[Collection(ShippedModelCollection.Name)]
public sealed class ShippedModelRerankTests(ShippedModelFixture fixture)
{
    // Passages about backups (one of them the answer to another question) are further distractors
    // in the window tests: they share "days", "kept" and "every night" with the certificate passage.
    private const string BackupAnswer =
        "The backups of the customer database are kept on the archive disk for thirty days; the backup job runs every night at two o'clock.";

    private static readonly string[] BackupFillers =
    [
        "The customer database runs on the primary server; a replica in the second data centre takes over when the primary fails.",
        "Snapshots of the virtual machines are taken before every upgrade and removed again after a week.",
        "Old log files are compressed every week and kept on the archive disk until an administrator removes them by hand.",
        "Support tickets of a customer are closed automatically when nobody has answered for fourteen days.",
        "The reporting service reads from the database replica at night, so that large queries do not slow down the shop during the day.",
        "Passwords of service accounts are rotated every ninety days; the new ones are stored in the vault, never in the repository.",
        "Deployments happen on Tuesday and Thursday mornings; a release that fails its checks is rolled back within an hour.",
    ];

    private const string CertificateAnswer =
        "The certificate of the web server is renewed thirty days before it expires; a timer runs the renewal and reloads the web server afterwards.";

    private static readonly string[] CertificateFillers =
    [
        "The web server listens on port 443 for encrypted connections and redirects plain requests on port 80 to it.",
        "Certificates for the internal services are issued by the company's own authority and are valid for one year.",
        "The load balancer checks every server once a minute and takes a server out of rotation after three failed checks.",
        "Static files of the web server are served from the cache; a changed file reaches visitors after at most ten minutes.",
        "Error pages are kept in a separate directory so that they still load when the application is down.",
        "The firewall drops every connection that does not come from the office network or the monitoring service.",
        "Access logs record the address, time and path of each request, and they are deleted after ninety days.",
    ];

    public static TheoryData<string, int> Queries => new()
    {
        // the query, and its length in tokens as the test states it
        { "web certificate", 2 },
        { "When is the web server's certificate renewed?", 10 },
        { "How many days before it expires is the certificate of the web server renewed, and what does the timer do after the renewal?", 25 },
    };

    private InContextReranker Create(int contextSize) => new(fixture.Model, new InContextRerankerOptions { ContextSize = contextSize });

    [Theory]
    [MemberData(nameof(Queries))]
    public async Task TheAnsweringPassageRanksFirstInEverySlot(string query, int statedTokens)
    {
        // Queries of about 2, 10 and 25 tokens (the tokenizer of another model may count one or two differently).
        Assert.InRange(fixture.Model.Tokenizer.CountTokens(query), statedTokens * 4 / 5, statedTokens * 6 / 5 + 1);
        (string answer, string[] fillers) = (CertificateAnswer, CertificateFillers);
        using InContextReranker reranker = Create(1024);
        for (int slot = 0; slot <= fillers.Length; slot++)
        {
            // A different order of the other passages for every slot.
            List<string> passages = [.. fillers.Skip(slot).Concat(fillers.Take(slot))];
            passages.Insert(slot, answer);
            IReadOnlyList<RankedDocument> ranked = await reranker.RerankAsync(query, passages);
            Assert.True(ranked[0].Index == slot,
                $"answer in slot {slot + 1} of {passages.Count} ranked {1 + ranked.TakeWhile(r => r.Index != slot).Count()}: " +
                string.Join(", ", ranked.Select(r => $"{r.Index}:{r.Score:F3}")));
        }
    }

    // A window filled with passages and one more passage that only fits into a window of its
    // own: the lone passage's score comes from a window unlike the others'. Whichever passage is
    // alone (the answer or a filler), the answer must stay first.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task APassageAloneInItsWindowDoesNotChangeWhichComesFirst(bool answerAlone)
    {
        const string query = "When is the web server's certificate renewed?";
        const string mailFiller =
            "The mail server keeps messages that could not be delivered in its queue and tries again every hour for five days before it returns them to the sender.";
        List<string> pool = [.. BackupFillers.Concat(CertificateFillers).Append(BackupAnswer).Order(StringComparer.Ordinal)];
        pool.Insert(5, answerAlone ? mailFiller : CertificateAnswer);
        string lone = answerAlone ? CertificateAnswer : mailFiller;

        // 512 tokens (llama.cpp rounds context sizes up to a multiple of 256): as many passages as
        // fit next to the instruction and query, then the lone one, which does not fit with them.
        using InContextReranker reranker = Create(512);
        Assert.Equal(512, reranker.ContextSize);
        Tokenizer tokenizer = fixture.Model.Tokenizer;
        int room = reranker.ContextSize - 1 - tokenizer.CountTokens(new InContextRerankerOptions().Instruction) -
            tokenizer.CountTokens($"\n\n{new InContextRerankerOptions().QueryInstruction}\n\nQuery: {query}");
        List<string> passages = [];
        int used = 0;
        foreach (string passage in pool)
        {
            int tokens = tokenizer.CountTokens($"\n\n[{passages.Count + 1}] {passage}");
            if (used + tokens > room)
            {
                break;
            }
            passages.Add(passage);
            used += tokens;
        }
        Assert.True(passages.Count >= 12, $"only {passages.Count} passages share the first window");
        Assert.True(used + tokenizer.CountTokens($"\n\n[{passages.Count + 1}] {lone}") > room, "the lone passage must not fit with the others");
        passages.Add(lone);

        IReadOnlyList<RankedDocument> ranked = await reranker.RerankAsync(query, passages);
        int answer = passages.IndexOf(CertificateAnswer);
        Assert.True(ranked[0].Index == answer,
            $"answer {answer} ranked {1 + ranked.TakeWhile(r => r.Index != answer).Count()}: " + string.Join(", ", ranked.Select(r => $"{r.Index}:{r.Score:F3}")));
    }

    [Theory]
    [InlineData(2048)]
    [InlineData(512)]
    [InlineData(256)]
    public async Task WindowsOfAnySizeKeepTheAnswerFirst(int contextSize)
    {
        const string query = "When is the web server's certificate renewed?";
        string[] others = [.. BackupFillers, .. CertificateFillers, BackupAnswer];
        using InContextReranker reranker = Create(contextSize);
        Assert.Equal(contextSize, reranker.ContextSize); // one, two and three windows
        // The answer early, in the middle and last: in different windows of the split.
        foreach (int slot in new[] { 1, others.Length / 2, others.Length })
        {
            List<string> passages = [.. others];
            passages.Insert(slot, CertificateAnswer);
            IReadOnlyList<RankedDocument> ranked = await reranker.RerankAsync(query, passages);
            Assert.True(ranked[0].Index == slot,
                $"context {contextSize}, answer in slot {slot + 1} ranked {1 + ranked.TakeWhile(r => r.Index != slot).Count()}: " +
                string.Join(", ", ranked.Select(r => $"{r.Index}:{r.Score:F3}")));
        }
    }
}
