using Heed.Attention;

namespace Heed.Tests.Attention;

/// <summary>
/// Causal linear attention, KV quantization and quantized decode attention through the facade, against managed float64
/// references, and the argument checks that run before any native call.
/// </summary>
public sealed class LinearKvKernelsTests
{
    private static float[] Normal(Random rng, long n, double sigma = 1)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++)
        {
            double u = 1.0 - rng.NextDouble(), v = rng.NextDouble();
            a[i] = (float)(sigma * Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v));
        }
        return a;
    }

    private static double RelativeError(ReadOnlySpan<float> actual, double[] expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (!float.IsFinite(actual[i]))
            {
                return double.PositiveInfinity;
            }
            num += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            den += expected[i] * expected[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    // The recurrence S_t = lambda S_{t-1} + phi(k_t) v_tᵀ, z_t = lambda z_{t-1} + phi(k_t), o_t = phi(q_t)ᵀ S_t [/ phi(q_t)·z_t].
    private static double[] LinearReference(float[] q, float[] k, float[] v, float[] decay, int b, int h, int n, int d, int dv,
        bool elu, bool normalize)
    {
        double Phi(float x) => elu ? (x > 0 ? x + 1.0 : Math.Exp(x)) : x;
        var o = new double[(long)b * h * n * dv];
        for (int bi = 0; bi < b; bi++)
        {
            for (int hi = 0; hi < h; hi++)
            {
                double lam = decay.Length == 0 ? 1 : decay[hi];
                var s = new double[d * dv];
                var z = new double[d];
                for (int t = 0; t < n; t++)
                {
                    long row = ((long)bi * h + hi) * n + t;
                    for (int i = 0; i < d; i++)
                    {
                        double kk = Phi(k[row * d + i]);
                        z[i] = lam * z[i] + kk;
                        for (int j = 0; j < dv; j++)
                        {
                            s[i * dv + j] = lam * s[i * dv + j] + kk * v[row * dv + j];
                        }
                    }
                    double den = 0;
                    for (int i = 0; i < d; i++)
                    {
                        den += Phi(q[row * d + i]) * z[i];
                    }
                    for (int j = 0; j < dv; j++)
                    {
                        double acc = 0;
                        for (int i = 0; i < d; i++)
                        {
                            acc += Phi(q[row * d + i]) * s[i * dv + j];
                        }
                        o[row * dv + j] = normalize ? acc / den : acc;
                    }
                }
            }
        }
        return o;
    }

    [Fact]
    public void CausalLinearAttentionMatchesFloat64Reference()
    {
        var rng = new Random(Environment.TickCount);
        const int b = 1, h = 2, n = 150, d = 16, dv = 8;
        float[] q = Normal(rng, b * h * n * d, 0.25), k = Normal(rng, b * h * n * d, 0.25), v = Normal(rng, b * h * n * dv);
        float[] decay = [0.9f, 0.99f];
        foreach (bool elu in new[] { false, true })
        {
            var o = new float[b * h * n * dv];
            Array.Fill(o, float.NaN);
            AttentionKernels.CausalLinearAttention(q, k, v, o, b, h, n, d, dv,
                elu ? AttentionKernels.LinearFeatureMap.EluPlusOne : AttentionKernels.LinearFeatureMap.Identity, normalize: elu, decay: decay);
            Assert.True(RelativeError(o, LinearReference(q, k, v, decay, b, h, n, d, dv, elu, elu)) < 1e-5);
        }
    }

    [Fact]
    public void CausalLinearAttentionStreamsThroughItsState()
    {
        var rng = new Random(Environment.TickCount);
        const int h = 1, n = 100, split = 70, d = 8, dv = 8;
        float[] q = Normal(rng, h * n * d, 0.3), k = Normal(rng, h * n * d, 0.3), v = Normal(rng, h * n * dv);
        var whole = new float[h * n * dv];
        AttentionKernels.CausalLinearAttention(q, k, v, whole, 1, h, n, d, dv, decay: [0.95f]);
        var state = new float[h * d * dv];
        var first = new float[split * dv];
        var second = new float[(n - split) * dv];
        AttentionKernels.CausalLinearAttention(q.AsSpan(0, split * d), k.AsSpan(0, split * d), v.AsSpan(0, split * dv), first, 1, h, split,
            d, dv, decay: [0.95f], stateOut: state);
        AttentionKernels.CausalLinearAttention(q.AsSpan(split * d), k.AsSpan(split * d), v.AsSpan(split * dv), second, 1, h, n - split, d,
            dv, decay: [0.95f], stateIn: (float[])state.Clone());
        double[] expected = whole.Select(x => (double)x).ToArray();
        Assert.True(RelativeError([.. first, .. second], expected) < 1e-5);
    }

    [Fact]
    public void QuantizedCacheStaysWithinHalfAScaleAndKeepsSalientTokens()
    {
        var rng = new Random(Environment.TickCount);
        const int b = 1, hk = 2, n = 77, d = 64;
        float[] k = Normal(rng, b * hk * n * d), v = Normal(rng, b * hk * n * d);
        var mask = new byte[n];
        mask[5] = 1;
        mask[40] = 1;
        foreach (int bits in new[] { 8, 4, 2 })
        {
            AttentionKernels.QuantizedKvCache cache = AttentionKernels.QuantizeKv(k, v, b, hk, n, d, d, bits, 32, mask);
            Assert.Equal(2, cache.SalientCount(0));
            var kd = new float[k.Length];
            var vd = new float[v.Length];
            Array.Fill(kd, float.NaN);
            Array.Fill(vd, float.NaN);
            cache.Dequantize(kd, vd);
            // A group's scale is at most its range / qmax rounded up; with the range of the whole tensor as a bound,
            // every non-salient element is within half of it (plus fp16 rounding of the scale).
            int qmax = (1 << bits) - 1;
            double range = Math.Max(k.Max() - k.Min(), v.Max() - v.Min());
            double bound = range / qmax / 2 * 1.01 + 1e-3;
            for (int i = 0; i < k.Length; i++)
            {
                int token = i / d % n;
                if (mask[token] != 0)
                {
                    Assert.Equal((float)(Half)k[i], kd[i]);
                    Assert.Equal((float)(Half)v[i], vd[i]);
                }
                else
                {
                    Assert.True(Math.Abs(kd[i] - k[i]) <= bound, $"k[{i}] = {k[i]} came back as {kd[i]} ({bits} bits)");
                    Assert.True(Math.Abs(vd[i] - v[i]) <= bound, $"v[{i}] = {v[i]} came back as {vd[i]} ({bits} bits)");
                }
            }
        }
    }

    [Fact]
    public void QuantizedDecodeMatchesFloat64OnTheDequantizedCache()
    {
        var rng = new Random(Environment.TickCount);
        const int b = 1, heads = 8, hk = 2, n = 130, d = 64, rows = 3;
        float[] k = Normal(rng, b * hk * n * d), v = Normal(rng, b * hk * n * d), q = Normal(rng, b * heads * rows * d);
        AttentionKernels.QuantizedKvCache cache = AttentionKernels.QuantizeKv(k, v, b, hk, n, d, d, 4, 64);
        var kd = new float[k.Length];
        var vd = new float[v.Length];
        cache.Dequantize(kd, vd);
        var o = new float[b * heads * rows * d];
        Array.Fill(o, float.NaN);
        AttentionKernels.QuantizedDecodeAttention(q, cache, heads, rows, o, causal: true, splits: 3);

        var expected = new double[o.Length];
        double scale = 1 / Math.Sqrt(d);
        for (int h = 0; h < heads; h++)
        {
            int g = h / (heads / hk);
            for (int i = 0; i < rows; i++)
            {
                int visible = n - rows + i + 1;
                var s = new double[visible];
                for (int j = 0; j < visible; j++)
                {
                    for (int c = 0; c < d; c++)
                    {
                        s[j] += (double)q[(h * rows + i) * d + c] * kd[((long)g * n + j) * d + c] * scale;
                    }
                }
                double max = s.Max(), sum = s.Sum(x => Math.Exp(x - max));
                for (int c = 0; c < d; c++)
                {
                    double acc = 0;
                    for (int j = 0; j < visible; j++)
                    {
                        acc += Math.Exp(s[j] - max) * vd[((long)g * n + j) * d + c];
                    }
                    expected[(h * rows + i) * d + c] = acc / sum;
                }
            }
        }
        Assert.True(RelativeError(o, expected) < 1e-5);
    }

    [Fact]
    public void BadArgumentsThrowBeforeTheNativeCall()
    {
        var q = new float[2 * 4 * 8];
        var o = new float[2 * 4 * 8];
        Assert.Throws<ArgumentException>(() => AttentionKernels.CausalLinearAttention(q, q, q, o, 1, 2, 5, 8, 8));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            AttentionKernels.CausalLinearAttention(q, q, q, o, 1, 2, 4, 8, 8, decay: [0.5f, 1.5f]));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            AttentionKernels.CausalLinearAttention(q, q, q, o, 1, 2, 4, 8, 8, featureMap: (AttentionKernels.LinearFeatureMap)9));
        Assert.Throws<ArgumentException>(() => AttentionKernels.CausalLinearAttention(q, q, q, o, 1, 2, 4, 8, 8, stateIn: new float[3]));

        var kv = new float[1 * 1 * 40 * 64];
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionKernels.QuantizeKv(kv, kv, 1, 1, 40, 64, 64, 3, 32));
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionKernels.QuantizeKv(kv, kv, 1, 1, 40, 64, 64, 4, 48));
        Assert.Throws<ArgumentException>(() => AttentionKernels.QuantizeKv(kv, kv, 1, 1, 41, 64, 64, 4, 32));
        Assert.Throws<ArgumentException>(() => AttentionKernels.QuantizeKv(kv, kv, 1, 1, 40, 64, 64, 4, 32, new byte[7]));
        var small = new float[1 * 1 * 40 * 6];
        Assert.Throws<ArgumentException>(() => AttentionKernels.QuantizeKv(small, small, 1, 1, 40, 6, 6, 2, 32));

        AttentionKernels.QuantizedKvCache cache = AttentionKernels.QuantizeKv(kv, kv, 1, 1, 40, 64, 64, 8, 32);
        AttentionKernels.QuantizedKvCache twoHeads = AttentionKernels.QuantizeKv(kv, kv, 1, 2, 20, 64, 64, 8, 32);
        var dq = new float[1 * 3 * 1 * 64];
        Assert.Throws<ArgumentException>(() => AttentionKernels.QuantizedDecodeAttention(dq, twoHeads, 3, 1, dq));
        var q9 = new float[9 * 64];
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionKernels.QuantizedDecodeAttention(q9, cache, 1, 9, q9));
        var q1 = new float[64];
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionKernels.QuantizedDecodeAttention(q1, cache, 1, 1, q1, scale: float.NaN));
        Assert.Throws<ArgumentException>(() => AttentionKernels.QuantizedDecodeAttention(q1, cache, 1, 1, new float[10]));
        Assert.Throws<ArgumentException>(() => cache.Dequantize(new float[5], default));
    }
}
