using System.Diagnostics;
using Heed.Attention;

namespace Heed.Cli.Bench;

/// <summary>
/// Each CPU kernel's fast path (AVX2 where present, threaded) against its plain reference path,
/// on the same inputs in the same run. The median of several runs after a warm-up.
/// </summary>
internal static class KernelBench
{
    public sealed record Row(string Kernel, string Shape, double ReferenceMs, double FastMs);

    public static IReadOnlyList<Row> Run(int threads, int repeats)
    {
        var random = new Random(3);
        float[] Random(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var rows = new List<Row>();

        // Attention aggregation: 64 query rows over 4096 keys, GQA 8/2, d 64.
        {
            const int nq = 64, nk = 4096, h = 8, hkv = 2, d = 64;
            float[] q = Random(nq * h * d), k = Random(nk * hkv * d), mass = new float[nk];
            int[] kp = Enumerable.Range(0, nk).ToArray(), qp = Enumerable.Range(nk - nq, nq).ToArray();
            rows.Add(Measure("attention aggregation", $"n_q {nq}, n_k {nk}, H {h}/{hkv}, d {d}", threads, repeats,
                () => { AttentionKernels.Aggregate<float>(q, qp, k, kp, h, hkv, d, mass); return null; }));
        }
        // Flash attention forward, causal, and block-sparse with an estimated mask.
        {
            var shape = new AttentionShape(1, 8, 2, 1024, 1024, 64);
            float[] q = Random(shape.QueryElements), k = Random(shape.KeyElements), v = Random(shape.KeyElements), o = new float[shape.QueryElements];
            rows.Add(Measure("flash attention fwd (causal)", "B 1, H 8/2, N 1024, d 64", threads, repeats,
                () => { AttentionKernels.FlashAttention<float>(q, k, v, o, shape, causal: true); return null; }));
            byte[] mask = new byte[shape.MaskElements(64)];
            AttentionKernels.EstimateBlockMask<float>(q, k, shape, 64, 0.9f, mask, causal: true);
            double density = mask.Average(b => (double)b);
            rows.Add(Measure("block-sparse attention fwd", $"B 1, H 8/2, N 1024, d 64, block 64, {density:P0} kept", threads, repeats,
                () => { AttentionKernels.BlockSparseAttention<float>(q, k, v, mask, 64, o, shape, causal: true); return null; }));
        }
        // Causal linear attention with decay.
        {
            const int h = 4, n = 4096, d = 64;
            float[] q = Random(h * n * d), k = Random(h * n * d), v = Random(h * n * d), o = new float[h * n * d];
            float[] decay = Enumerable.Repeat(0.99f, h).ToArray();
            rows.Add(Measure("linear attention (decay)", $"B 1, H {h}, N {n}, d {d}", threads, repeats,
                () => { AttentionKernels.CausalLinearAttention(q, k, v, o, 1, h, n, d, d, decay: decay); return null; }));
        }
        // KV quantization to int4 and decode attention over it.
        {
            const int hkv = 2, h = 8, n = 8192, d = 64;
            float[] k = Random(hkv * n * d), v = Random(hkv * n * d);
            rows.Add(Measure("KV quantize int4 g64", $"H_kv {hkv}, N {n}, d {d}", threads, repeats,
                () => AttentionKernels.QuantizeKv(k, v, 1, hkv, n, d, d, 4, 64)));
            AttentionKernels.QuantizedKvCache cache = AttentionKernels.QuantizeKv(k, v, 1, hkv, n, d, d, 4, 64);
            float[] q = Random(h * d), o = new float[h * d];
            rows.Add(Measure("int4 decode attention", $"1 row, H {h}/{hkv}, N {n}, d {d}", threads, repeats,
                () => { AttentionKernels.QuantizedDecodeAttention(q, cache, h, 1, o); return null; }));
        }
        AttentionKernels.ConfigureCpu(reference: false, threads: 0);
        return rows;
    }

    private static Row Measure(string kernel, string shape, int threads, int repeats, Func<object?> run)
    {
        double Time(bool reference)
        {
            AttentionKernels.ConfigureCpu(reference, threads);
            run(); // warm-up
            var times = new double[repeats];
            for (int i = 0; i < repeats; i++)
            {
                var clock = Stopwatch.StartNew();
                run();
                times[i] = clock.Elapsed.TotalMilliseconds;
            }
            Array.Sort(times);
            return times[repeats / 2];
        }
        double reference = Time(true);
        double fast = Time(false);
        return new Row(kernel, shape, reference, fast);
    }
}
