using Heed.Attention;

namespace Heed.Gpu.Tests;

/// <summary>libheed's kernels on tensors that live in GPU memory, against float64 attention.</summary>
[Trait("Category", "Cuda")]
public sealed class GpuKernelTests
{
    [Fact]
    public void DeviceTensorsRunFlashAttentionOnTheGpu()
    {
        Assert.True(DeviceTensor.IsCudaAvailable, "no CUDA device: this GPU test must run on a machine with one");
        var rng = new Random(21);
        var shape = new AttentionShape(1, 4, 2, 100, 120, 64);
        Half[] q = Normal(rng, shape.QueryElements);
        Half[] k = Normal(rng, shape.KeyElements);
        Half[] v = Normal(rng, shape.KeyElements);
        using var dq = DeviceTensor.FromHost<Half>(q, TensorElementType.Float16, [1, 4, 100, 64]);
        using var dk = DeviceTensor.FromHost<Half>(k, TensorElementType.Float16, [1, 2, 120, 64]);
        using var dv = DeviceTensor.FromHost<Half>(v, TensorElementType.Float16, [1, 2, 120, 64]);
        using var dout = DeviceTensor.Allocate(TensorElementType.Float16, [1, 4, 100, 64]);
        AttentionKernels.FlashAttention(dq, dk, dv, dout, causal: true);
        var o = new Half[shape.QueryElements];
        dout.CopyTo<Half>(o);

        double[] expected = CausalAttention(q, k, v, shape);
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = (double)o[i] - expected[i];
            num += diff * diff;
            den += expected[i] * expected[i];
        }
        double relative = Math.Sqrt(num / den);
        Assert.True(relative < 4e-3, $"relative error {relative:E2} against float64 attention");

        using var wrong = DeviceTensor.Allocate(TensorElementType.Float16, [1, 4, 99, 64]);
        Assert.Contains("output", Assert.Throws<ArgumentException>(() => AttentionKernels.FlashAttention(dq, dk, dv, wrong)).Message);
    }

    private static Half[] Normal(Random rng, long n)
    {
        var a = new Half[n];
        for (long i = 0; i < n; i++)
        {
            double u = 1.0 - rng.NextDouble(), w = rng.NextDouble(); // Box-Muller
            a[i] = (Half)(Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * w));
        }
        return a;
    }

    // softmax(q.k / sqrt(d)) v in float64, layout [batch, head, row, dim], query i sees keys j <= i,
    // query head h reads key/value head h / (heads / kvHeads).
    private static double[] CausalAttention(Half[] q, Half[] k, Half[] v, AttentionShape s)
    {
        int d = s.HeadDim;
        var o = new double[s.QueryElements];
        var p = new double[s.KeyLength];
        for (int h = 0; h < s.Heads; h++)
        for (int i = 0; i < s.QueryLength; i++)
        {
            int g = h / (s.Heads / s.KvHeads);
            long qrow = ((long)h * s.QueryLength + i) * d;
            int visible = Math.Min(i + 1, s.KeyLength);
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < visible; j++)
            {
                long krow = ((long)g * s.KeyLength + j) * d;
                double dot = 0;
                for (int c = 0; c < d; c++)
                {
                    dot += (double)q[qrow + c] * (double)k[krow + c];
                }
                p[j] = dot / Math.Sqrt(d);
                max = Math.Max(max, p[j]);
            }
            for (int j = 0; j < visible; j++)
            {
                p[j] = Math.Exp(p[j] - max);
                sum += p[j];
            }
            for (int j = 0; j < visible; j++)
            {
                long vrow = ((long)g * s.KeyLength + j) * d;
                for (int c = 0; c < d; c++)
                {
                    o[qrow + c] += p[j] / sum * (double)v[vrow + c];
                }
            }
        }
        return o;
    }
}
