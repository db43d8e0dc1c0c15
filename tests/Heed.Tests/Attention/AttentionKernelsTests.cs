using Heed.Attention;

namespace Heed.Tests.Attention;

/// <summary>The attention kernel facade on host spans against managed float64 references, and its argument checks.</summary>
public sealed class AttentionKernelsTests
{
    private static float[] Normal(Random rng, long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++)
        {
            // Box-Muller: standard normal values, never all zeros.
            double u = 1.0 - rng.NextDouble(), v = rng.NextDouble();
            a[i] = (float)(Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v));
        }
        return a;
    }

    private static double RelativeError(ReadOnlySpan<float> actual, double[] expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (float.IsNaN(actual[i]))
            {
                return double.PositiveInfinity;
            }
            num += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            den += expected[i] * expected[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    // output[j] = sum_h sum_i softmax over visible j' of scale q_i,h . k_j',g, in float64.
    private static (double[] Total, double[] PerHead) AggregateReference(float[] q, int[] qpos, float[] k, int[] kpos, int heads,
        int kvHeads, int d, bool causal)
    {
        int nq = qpos.Length, nk = kpos.Length;
        var total = new double[nk];
        var perHead = new double[heads * nk];
        var s = new double[nk];
        double scale = 1 / Math.Sqrt(d);
        for (int h = 0; h < heads; h++)
        {
            int g = h / (heads / kvHeads);
            for (int i = 0; i < nq; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < nk; j++)
                {
                    s[j] = double.NegativeInfinity;
                    if (causal && kpos[j] > qpos[i])
                    {
                        continue;
                    }
                    double dot = 0;
                    for (int c = 0; c < d; c++)
                    {
                        dot += (double)q[((long)i * heads + h) * d + c] * k[((long)j * kvHeads + g) * d + c];
                    }
                    s[j] = dot * scale;
                    max = Math.Max(max, s[j]);
                }
                if (double.IsNegativeInfinity(max))
                {
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < nk; j++)
                {
                    sum += Math.Exp(s[j] - max);
                }
                for (int j = 0; j < nk; j++)
                {
                    double p = Math.Exp(s[j] - max) / sum;
                    total[j] += p;
                    perHead[h * nk + j] += p;
                }
            }
        }
        return (total, perHead);
    }

    private static double[] AttentionReference(float[] q, float[] k, float[] v, AttentionShape s, bool causal, byte[]? mask = null,
        int block = 0)
    {
        var o = new double[s.QueryElements];
        var sc = new double[s.KeyLength];
        double scale = 1 / Math.Sqrt(s.HeadDim);
        int d = s.HeadDim, nqb = AttentionShape.BlockCount(s.QueryLength, Math.Max(block, 1)),
            nkb = AttentionShape.BlockCount(s.KeyLength, Math.Max(block, 1));
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        for (int i = 0; i < s.QueryLength; i++)
        {
            int g = h / (s.Heads / s.KvHeads);
            long qrow = (((long)b * s.Heads + h) * s.QueryLength + i) * d;
            double max = double.NegativeInfinity;
            for (int j = 0; j < s.KeyLength; j++)
            {
                sc[j] = double.NegativeInfinity;
                bool visible = !(causal && j > i) &&
                               (mask is null || mask[(((long)b * s.Heads + h) * nqb + i / block) * nkb + j / block] != 0);
                if (!visible)
                {
                    continue;
                }
                long krow = (((long)b * s.KvHeads + g) * s.KeyLength + j) * d;
                double dot = 0;
                for (int c = 0; c < d; c++)
                {
                    dot += (double)q[qrow + c] * k[krow + c];
                }
                sc[j] = dot * scale;
                max = Math.Max(max, sc[j]);
            }
            if (double.IsNegativeInfinity(max))
            {
                continue;
            }
            double sum = 0;
            for (int j = 0; j < s.KeyLength; j++)
            {
                sum += Math.Exp(sc[j] - max);
            }
            for (int j = 0; j < s.KeyLength; j++)
            {
                if (double.IsNegativeInfinity(sc[j]))
                {
                    continue;
                }
                double p = Math.Exp(sc[j] - max) / sum;
                long vrow = (((long)b * s.KvHeads + g) * s.KeyLength + j) * d;
                for (int c = 0; c < d; c++)
                {
                    o[qrow + c] += p * v[vrow + c];
                }
            }
        }
        return o;
    }

    [Theory]
    [InlineData(1, 1, 8, 8, 64, true)]
    [InlineData(7, 90, 8, 2, 64, true)]
    [InlineData(12, 130, 8, 1, 128, false)]
    [InlineData(5, 40, 4, 4, 24, true)]
    public void AggregateMatchesFloat64Reference(int nq, int nk, int heads, int kvHeads, int d, bool causal)
    {
        var rng = new Random(nq * 1000 + nk);
        float[] q = Normal(rng, (long)nq * heads * d), k = Normal(rng, (long)nk * kvHeads * d);
        int[] kpos = Enumerable.Range(0, nk).ToArray();
        int[] qpos = Enumerable.Range(0, nq).Select(_ => rng.Next(-3, nk + 2)).ToArray(); // some rows see nothing
        var output = new float[nk];
        var perHead = new float[heads * nk];
        Array.Fill(output, float.NaN);
        Array.Fill(perHead, float.NaN);
        AttentionKernels.Aggregate<float>(q, qpos, k, kpos, heads, kvHeads, d, output, perHead, causal);
        var (total, expectedPerHead) = AggregateReference(q, qpos, k, kpos, heads, kvHeads, d, causal);
        Assert.True(RelativeError(output, total) < 2e-5, $"total error {RelativeError(output, total)}");
        Assert.True(RelativeError(perHead, expectedPerHead) < 2e-5, $"per-head error {RelativeError(perHead, expectedPerHead)}");
    }

    [Fact]
    public void AggregateOnHalfInputs()
    {
        var rng = new Random(5);
        const int nq = 6, nk = 70, heads = 4, kvHeads = 2, d = 64;
        Half[] q = Normal(rng, nq * heads * d).Select(x => (Half)x).ToArray(), k = Normal(rng, nk * kvHeads * d).Select(x => (Half)x).ToArray();
        int[] kpos = Enumerable.Range(0, nk).ToArray(), qpos = Enumerable.Range(nk - nq, nq).ToArray();
        var output = new float[nk];
        AttentionKernels.Aggregate<Half>(q, qpos, k, kpos, heads, kvHeads, d, output);
        var (total, _) = AggregateReference(q.Select(x => (float)x).ToArray(), qpos, k.Select(x => (float)x).ToArray(), kpos, heads,
            kvHeads, d, causal: true);
        Assert.True(RelativeError(output, total) < 2e-5);
        Assert.Equal(nq * heads, output.Sum(x => (double)x), 3); // every row's mass is 1
    }

    [Theory]
    [InlineData(1, 8, 2, 37, 70, 64, true)]
    [InlineData(2, 4, 4, 33, 20, 128, false)]
    [InlineData(1, 8, 1, 1, 1, 64, true)]
    [InlineData(1, 2, 1, 70, 45, 40, true)]
    public void FlashAttentionMatchesFloat64Reference(int batch, int heads, int kvHeads, int nq, int nk, int d, bool causal)
    {
        var rng = new Random(batch + heads + nq + nk + d);
        var shape = new AttentionShape(batch, heads, kvHeads, nq, nk, d);
        float[] q = Normal(rng, shape.QueryElements), k = Normal(rng, shape.KeyElements), v = Normal(rng, shape.KeyElements);
        var o = new float[shape.QueryElements];
        var lse = new float[shape.RowCount];
        Array.Fill(o, float.NaN);
        Array.Fill(lse, float.NaN);
        AttentionKernels.FlashAttention<float>(q, k, v, o, shape, causal, logSumExp: lse);
        double[] expected = AttentionReference(q, k, v, shape, causal);
        Assert.True(RelativeError(o, expected) < 2e-5, $"error {RelativeError(o, expected)}");
        Assert.DoesNotContain(lse, float.IsNaN);
    }

    [Fact]
    public void FlashAttentionHalfAndReferencePathAgree()
    {
        var rng = new Random(9);
        var shape = new AttentionShape(1, 4, 2, 50, 80, 64);
        Half[] q = Normal(rng, shape.QueryElements).Select(x => (Half)x).ToArray();
        Half[] k = Normal(rng, shape.KeyElements).Select(x => (Half)x).ToArray();
        Half[] v = Normal(rng, shape.KeyElements).Select(x => (Half)x).ToArray();
        var fast = new Half[shape.QueryElements];
        var reference = new Half[shape.QueryElements];
        AttentionKernels.FlashAttention<Half>(q, k, v, fast, shape, causal: true);
        try
        {
            AttentionKernels.ConfigureCpu(reference: true, threads: 1);
            AttentionKernels.FlashAttention<Half>(q, k, v, reference, shape, causal: true);
        }
        finally
        {
            AttentionKernels.ConfigureCpu(reference: false, threads: 0);
        }
        double[] expected = AttentionReference(q.Select(x => (float)x).ToArray(), k.Select(x => (float)x).ToArray(),
            v.Select(x => (float)x).ToArray(), shape, causal: true);
        Assert.True(RelativeError(fast.Select(x => (float)x).ToArray(), expected) < 3e-3);
        Assert.True(RelativeError(reference.Select(x => (float)x).ToArray(), expected) < 3e-3);
    }

    [Fact]
    public void BlockSparseAndMaskEstimate()
    {
        var rng = new Random(13);
        var shape = new AttentionShape(1, 4, 2, 200, 260, 64);
        const int block = 64;
        float[] q = Normal(rng, shape.QueryElements), k = Normal(rng, shape.KeyElements), v = Normal(rng, shape.KeyElements);
        var mask = new byte[shape.MaskElements(block)];
        Array.Fill(mask, (byte)0xCD);
        AttentionKernels.EstimateBlockMask<float>(q, k, shape, block, 0.9f, mask, causal: true);
        Assert.All(mask, m => Assert.True(m is 0 or 1));
        int nqb = AttentionShape.BlockCount(shape.QueryLength, block), nkb = AttentionShape.BlockCount(shape.KeyLength, block);
        for (int h = 0; h < shape.Heads; h++)
        for (int qb = 0; qb < nqb; qb++)
        {
            int diag = Math.Min(qb, nkb - 1);
            Assert.Equal(1, mask[(h * nqb + qb) * nkb]);
            Assert.Equal(1, mask[(h * nqb + qb) * nkb + diag]);
            for (int kb = diag + 1; kb < nkb; kb++)
            {
                Assert.Equal(0, mask[(h * nqb + qb) * nkb + kb]);
            }
        }
        var o = new float[shape.QueryElements];
        AttentionKernels.BlockSparseAttention<float>(q, k, v, mask, block, o, shape, causal: true);
        double[] expected = AttentionReference(q, k, v, shape, causal: true, mask, block);
        Assert.True(RelativeError(o, expected) < 2e-5, $"error {RelativeError(o, expected)}");
    }

    [Fact]
    public void BadArgumentsThrowBeforeAnyNativeCall()
    {
        var shape = new AttentionShape(1, 4, 2, 8, 8, 16);
        var q = new float[shape.QueryElements];
        var k = new float[shape.KeyElements];
        var o = new float[shape.QueryElements];
        Assert.Contains("queries", Assert.Throws<ArgumentException>(() =>
            AttentionKernels.FlashAttention<float>(q.AsSpan(1), k, k, o, shape)).Message);
        Assert.Contains("multiple", Assert.Throws<ArgumentException>(() =>
            AttentionKernels.FlashAttention<float>(q, k, k, o, shape with { KvHeads = 3 })).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionKernels.FlashAttention<float>(q, k, k, o, shape, scale: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionKernels.FlashAttention<float>(q, k, k, o, shape, scale: float.NaN));
        Assert.Contains("float or Half", Assert.Throws<ArgumentException>(() =>
            AttentionKernels.FlashAttention<double>(new double[q.Length], new double[k.Length], new double[k.Length], new double[o.Length], shape)).Message);
        Assert.Contains("logSumExp", Assert.Throws<ArgumentException>(() =>
            AttentionKernels.FlashAttention<float>(q, k, k, o, shape, logSumExp: new float[3])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            AttentionKernels.BlockSparseAttention<float>(q, k, k, new byte[4], 32, o, shape));
        Assert.Contains("blockMask", Assert.Throws<ArgumentException>(() =>
            AttentionKernels.BlockSparseAttention<float>(q, k, k, new byte[3], 64, o, shape)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            AttentionKernels.EstimateBlockMask<float>(q, k, shape, 64, 0f, new byte[shape.MaskElements(64)]));
        Assert.Contains("kvHeads", Assert.Throws<ArgumentException>(() =>
            AttentionKernels.Aggregate<float>(new float[2 * 4 * 16], [0, 1], new float[3 * 3 * 16], [0, 1, 2], 4, 3, 16, new float[3])).Message);
        Assert.Contains("output", Assert.Throws<ArgumentException>(() =>
            AttentionKernels.Aggregate<float>(new float[2 * 4 * 16], [0, 1], new float[3 * 2 * 16], [0, 1, 2], 4, 2, 16, new float[2])).Message);
        Assert.Contains("queries", Assert.Throws<ArgumentException>(() =>
            AttentionKernels.Aggregate<float>(new float[5], [0, 1], new float[3 * 2 * 16], [0, 1, 2], 4, 2, 16, new float[3])).Message);
        Assert.Throws<ArgumentException>(() =>
            AttentionKernels.Aggregate<float>(new float[0], [], new float[3 * 2 * 16], [0, 1, 2], 4, 2, 16, new float[3]));
    }

    // The CPU run (Category!=Cuda) runs on machines without CUDA; the GPU run executes the Cuda test below.
    [Fact]
    public void WithoutCudaDeviceTensorsAreAClearError()
    {
        Assert.False(DeviceTensor.IsCudaAvailable, "CUDA is available here: this test asserts the behaviour without it; the Cuda test covers the GPU");
        var e = Assert.Throws<HeedNativeException>(() => DeviceTensor.Allocate(TensorElementType.Float16, [1, 2, 64, 64]));
        Assert.Equal(Heed.Interop.Native.HeedStatus.NoCuda, e.Status);
    }
}
