using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Heed.Interop.Native;

namespace Heed.Attention;

// Causal linear attention, KV cache quantization and decode attention over the quantized cache
// (libheed's heed/linear_attention.h and heed/kv_quant.h), on host spans. Every argument is
// checked here before the native call.
public static unsafe partial class AttentionKernels
{
    /// <summary>The feature map applied to queries and keys of <see cref="CausalLinearAttention"/>.</summary>
    public enum LinearFeatureMap
    {
        /// <summary>phi(x) = x.</summary>
        Identity = 0,

        /// <summary>phi(x) = elu(x) + 1: x + 1 for x &gt; 0, exp(x) otherwise (always positive).</summary>
        EluPlusOne = 1,
    }

    /// <summary>
    /// Causal linear attention, chunked (64 tokens): o_t = sum over s &lt;= t of decay^(t-s) (phi(q_t) · phi(k_s)) v_s,
    /// plus decay^(t+1) phi(q_t)ᵀ S_in from an initial state. With <paramref name="normalize"/>, o_t is divided by
    /// phi(q_t) · z_t (z_t = sum of decay^(t-s) phi(k_s), plus the carried normalizer), a denominator whose magnitude
    /// is below <paramref name="epsilon"/> taken as ±epsilon. Streaming: pass one call's <paramref name="stateOut"/> and
    /// <paramref name="normalizerOut"/> as the next call's <paramref name="stateIn"/> and <paramref name="normalizerIn"/>.
    /// </summary>
    /// <param name="queries">[batch, heads, tokens, headDim].</param>
    /// <param name="keys">[batch, heads, tokens, headDim].</param>
    /// <param name="values">[batch, heads, tokens, valueDim].</param>
    /// <param name="output">[batch, heads, tokens, valueDim]; every element is written.</param>
    /// <param name="batch">Batch items.</param>
    /// <param name="heads">Heads.</param>
    /// <param name="tokens">Tokens in this call.</param>
    /// <param name="headDim">Query/key size.</param>
    /// <param name="valueDim">Value size.</param>
    /// <param name="featureMap">phi.</param>
    /// <param name="normalize">Whether to divide by phi(q_t) · z_t.</param>
    /// <param name="decay">Empty (no decay), or [heads] values in [0, 1].</param>
    /// <param name="stateIn">Empty (zeros), or [batch, heads, headDim, valueDim].</param>
    /// <param name="normalizerIn">Empty (zeros), or [batch, heads, headDim].</param>
    /// <param name="stateOut">Empty, or [batch, heads, headDim, valueDim]: the state after the last token.</param>
    /// <param name="normalizerOut">Empty, or [batch, heads, headDim]: z after the last token.</param>
    /// <param name="epsilon">The denominator guard; 0 for 1e-6.</param>
    public static void CausalLinearAttention(ReadOnlySpan<float> queries, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        Span<float> output, int batch, int heads, int tokens, int headDim, int valueDim,
        LinearFeatureMap featureMap = LinearFeatureMap.Identity, bool normalize = false, ReadOnlySpan<float> decay = default,
        ReadOnlySpan<float> stateIn = default, ReadOnlySpan<float> normalizerIn = default, Span<float> stateOut = default,
        Span<float> normalizerOut = default, float epsilon = 0)
    {
        if (batch < 1 || heads < 1 || tokens < 1 || headDim < 1 || valueDim < 1)
        {
            throw new ArgumentException(
                $"batch ({batch}), heads ({heads}), tokens ({tokens}), headDim ({headDim}) and valueDim ({valueDim}) must be at least 1.",
                nameof(tokens));
        }
        if (!Enum.IsDefined(featureMap))
        {
            throw new ArgumentOutOfRangeException(nameof(featureMap), featureMap, "Use Identity or EluPlusOne.");
        }
        if (!float.IsFinite(epsilon) || epsilon < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be finite and positive, or 0 for 1e-6.");
        }
        long bh = (long)batch * heads;
        LkCheckLength(queries.Length, bh * tokens * headDim, nameof(queries), "batch x heads x tokens x headDim");
        LkCheckLength(keys.Length, bh * tokens * headDim, nameof(keys), "batch x heads x tokens x headDim");
        LkCheckLength(values.Length, bh * tokens * valueDim, nameof(values), "batch x heads x tokens x valueDim");
        LkCheckLength(output.Length, bh * tokens * valueDim, nameof(output), "batch x heads x tokens x valueDim");
        LkCheckOptional(decay.Length, heads, nameof(decay), "heads");
        LkCheckOptional(stateIn.Length, bh * headDim * valueDim, nameof(stateIn), "batch x heads x headDim x valueDim");
        LkCheckOptional(normalizerIn.Length, bh * headDim, nameof(normalizerIn), "batch x heads x headDim");
        LkCheckOptional(stateOut.Length, bh * headDim * valueDim, nameof(stateOut), "batch x heads x headDim x valueDim");
        LkCheckOptional(normalizerOut.Length, bh * headDim, nameof(normalizerOut), "batch x heads x headDim");
        for (int h = 0; h < decay.Length; h++)
        {
            if (!(decay[h] >= 0 && decay[h] <= 1))
            {
                throw new ArgumentOutOfRangeException(nameof(decay), decay[h], $"decay[{h}] must be in [0, 1].");
            }
        }
        fixed (float* q = queries)
        fixed (float* k = keys)
        fixed (float* v = values)
        fixed (float* o = output)
        fixed (float* lam = decay)
        fixed (float* si = stateIn)
        fixed (float* zi = normalizerIn)
        fixed (float* so = stateOut)
        fixed (float* zo = normalizerOut)
        {
            HeedTensor tq = Host(q, HeedDType.F32, batch, heads, tokens, headDim), tk = Host(k, HeedDType.F32, batch, heads, tokens, headDim);
            HeedTensor tv = Host(v, HeedDType.F32, batch, heads, tokens, valueDim), to = Host(o, HeedDType.F32, batch, heads, tokens, valueDim);
            HeedTensor tl = Host(lam, HeedDType.F32, heads);
            HeedTensor tsi = Host(si, HeedDType.F32, batch, heads, headDim, valueDim), tzi = Host(zi, HeedDType.F32, batch, heads, headDim);
            HeedTensor tso = Host(so, HeedDType.F32, batch, heads, headDim, valueDim), tzo = Host(zo, HeedDType.F32, batch, heads, headDim);
            HeedError.ThrowIfFailed(HeedLinearKvNative.heed_linear_attention_causal(&tq, &tk, &tv, decay.IsEmpty ? null : &tl,
                stateIn.IsEmpty ? null : &tsi, normalizerIn.IsEmpty ? null : &tzi, (int)featureMap, normalize ? 1 : 0, epsilon, &to,
                stateOut.IsEmpty ? null : &tso, normalizerOut.IsEmpty ? null : &tzo), "heed_linear_attention_causal");
        }
    }

    /// <summary>
    /// Quantizes a K/V cache (layout and rounding: heed/kv_quant.h): K per channel over groups of
    /// <paramref name="groupSize"/> tokens, V per token over groups of channels, asymmetric with fp16 scale and zero,
    /// so every element is within scale/2 of its input. Tokens marked in <paramref name="salientMask"/> are kept as
    /// fp16 copies instead.
    /// </summary>
    /// <param name="keys">[batch, kvHeads, tokens, headDim].</param>
    /// <param name="values">[batch, kvHeads, tokens, valueDim].</param>
    /// <param name="batch">Batch items.</param>
    /// <param name="kvHeads">Key/value heads.</param>
    /// <param name="tokens">Tokens.</param>
    /// <param name="headDim">Key size; a multiple of 8 / <paramref name="bits"/>.</param>
    /// <param name="valueDim">Value size; a multiple of 8 / <paramref name="bits"/>.</param>
    /// <param name="bits">8, 4 or 2.</param>
    /// <param name="groupSize">32, 64 or 128.</param>
    /// <param name="salientMask">Empty, [tokens] (the same for every batch item) or [batch, tokens]; nonzero = keep at fp16.</param>
    /// <returns>The quantized cache in host memory.</returns>
    public static QuantizedKvCache QuantizeKv(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int batch, int kvHeads, int tokens,
        int headDim, int valueDim, int bits, int groupSize, ReadOnlySpan<byte> salientMask = default)
    {
        if (batch < 1 || kvHeads < 1 || tokens < 1 || headDim < 1 || valueDim < 1)
        {
            throw new ArgumentException(
                $"batch ({batch}), kvHeads ({kvHeads}), tokens ({tokens}), headDim ({headDim}) and valueDim ({valueDim}) must be at least 1.",
                nameof(tokens));
        }
        if (bits is not (8 or 4 or 2))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Use 8, 4 or 2 bits.");
        }
        if (groupSize is not (32 or 64 or 128))
        {
            throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "Use a group size of 32, 64 or 128.");
        }
        int perByte = 8 / bits;
        if (headDim % perByte != 0 || valueDim % perByte != 0)
        {
            throw new ArgumentException($"headDim ({headDim}) and valueDim ({valueDim}) must be multiples of {perByte} for {bits}-bit codes.",
                nameof(headDim));
        }
        long rows = (long)batch * kvHeads * tokens;
        LkCheckLength(keys.Length, rows * headDim, nameof(keys), "batch x kvHeads x tokens x headDim");
        LkCheckLength(values.Length, rows * valueDim, nameof(values), "batch x kvHeads x tokens x valueDim");
        bool perBatch = salientMask.Length == (long)batch * tokens && batch > 1;
        if (!salientMask.IsEmpty && salientMask.Length != tokens && !perBatch)
        {
            throw new ArgumentException($"salientMask has {salientMask.Length} elements; expected 0, tokens ({tokens}) or batch x tokens.",
                nameof(salientMask));
        }
        int capacity = 0;
        for (int b = 0; b < (perBatch ? batch : 1) && !salientMask.IsEmpty; b++)
        {
            int count = 0;
            foreach (byte m in salientMask.Slice(b * tokens, tokens))
            {
                count += m != 0 ? 1 : 0;
            }
            capacity = Math.Max(capacity, count);
        }
        var cache = new QuantizedKvCache(batch, kvHeads, tokens, headDim, valueDim, bits, groupSize, capacity);
        fixed (float* k = keys)
        fixed (float* v = values)
        fixed (byte* m = salientMask)
        {
            HeedTensor tk = Host(k, HeedDType.F32, batch, kvHeads, tokens, headDim);
            HeedTensor tv = Host(v, HeedDType.F32, batch, kvHeads, tokens, valueDim);
            HeedTensor tm = perBatch ? Host(m, HeedDType.U8, batch, tokens) : Host(m, HeedDType.U8, tokens);
            HeedQuantKv layout = cache.Layout;
            HeedError.ThrowIfFailed(HeedLinearKvNative.heed_kv_quantize(&tk, &tv, salientMask.IsEmpty ? null : &tm, &layout),
                "heed_kv_quantize");
        }
        return cache;
    }

    /// <summary>
    /// Decode attention over a quantized cache, dequantizing on the fly: output = softmax(scale q kᵀ) v per query row,
    /// query head h reading kv head h / (heads / kvHeads). The <paramref name="queryRows"/> rows are the last positions of
    /// the sequence; with <paramref name="causal"/>, row i sees keys 0 .. tokens - queryRows + i.
    /// </summary>
    /// <param name="queries">[batch, heads, queryRows, headDim].</param>
    /// <param name="cache">The quantized cache (from <see cref="QuantizeKv"/>).</param>
    /// <param name="heads">Query heads; a multiple of the cache's kv heads.</param>
    /// <param name="queryRows">1 to 8, at most the cached tokens.</param>
    /// <param name="output">[batch, heads, queryRows, valueDim]; every element is written.</param>
    /// <param name="causal">Whether the rows are causal among themselves.</param>
    /// <param name="scale">The score scale; 0 for 1/sqrt(headDim).</param>
    /// <param name="splits">Parts the sequence is cut into (flash-decoding); 0 chooses.</param>
    public static void QuantizedDecodeAttention(ReadOnlySpan<float> queries, QuantizedKvCache cache, int heads, int queryRows,
        Span<float> output, bool causal = true, float scale = 0, int splits = 0)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (heads < 1 || heads % cache.KvHeads != 0)
        {
            throw new ArgumentException($"heads ({heads}) must be a positive multiple of the cache's kvHeads ({cache.KvHeads}).", nameof(heads));
        }
        if (queryRows < 1 || queryRows > 8 || queryRows > cache.Tokens)
        {
            throw new ArgumentOutOfRangeException(nameof(queryRows), queryRows,
                $"Decode attention takes 1 to 8 query rows, at most the {cache.Tokens} cached tokens.");
        }
        if (!float.IsFinite(scale) || scale < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "The scale must be finite and positive, or 0 for 1/sqrt(headDim).");
        }
        if (splits < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(splits), splits, "splits must be 0 (choose) or positive.");
        }
        long rows = (long)cache.Batch * heads * queryRows;
        LkCheckLength(queries.Length, rows * cache.HeadDim, nameof(queries), "batch x heads x queryRows x headDim");
        LkCheckLength(output.Length, rows * cache.ValueDim, nameof(output), "batch x heads x queryRows x valueDim");
        fixed (float* q = queries)
        fixed (float* o = output)
        {
            HeedTensor tq = Host(q, HeedDType.F32, cache.Batch, heads, queryRows, cache.HeadDim);
            HeedTensor to = Host(o, HeedDType.F32, cache.Batch, heads, queryRows, cache.ValueDim);
            HeedQuantKv layout = cache.Layout;
            HeedError.ThrowIfFailed(HeedLinearKvNative.heed_quant_decode_attention(&tq, &layout, causal ? 1 : 0, scale, splits, &to),
                "heed_quant_decode_attention");
        }
        GC.KeepAlive(cache);
    }

    /// <summary>
    /// A quantized K/V cache in host memory: the packed codes, fp16 scales and zeros, and the salient tokens' fp16
    /// rows, in the layout heed/kv_quant.h documents. Made by <see cref="QuantizeKv"/>.
    /// </summary>
    public sealed class QuantizedKvCache
    {
        private readonly byte[][] _buffers = new byte[HeedQuantKv.TensorCount][];

        internal QuantizedKvCache(int batch, int kvHeads, int tokens, int headDim, int valueDim, int bits, int groupSize, int salientCapacity)
        {
            (Batch, KvHeads, Tokens, HeadDim, ValueDim, Bits, GroupSize, SalientCapacity) =
                (batch, kvHeads, tokens, headDim, valueDim, bits, groupSize, salientCapacity);
            HeedQuantKv layout = default;
            nuint* bytes = stackalloc nuint[HeedQuantKv.TensorCount];
            HeedError.ThrowIfFailed(HeedLinearKvNative.heed_quant_kv_sizes(batch, kvHeads, tokens, headDim, valueDim, bits, groupSize,
                salientCapacity, &layout, bytes, null), "heed_quant_kv_sizes");
            HeedTensor* t = &layout.k_codes;
            for (int i = 0; i < HeedQuantKv.TensorCount; i++)
            {
                // Pinned for the cache's lifetime: the layout keeps their addresses.
                _buffers[i] = GC.AllocateArray<byte>(checked((int)bytes[i]) + 1, pinned: true);
                t[i].data = Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffers[i]));
            }
            Layout = layout;
        }

        /// <summary>The heed_quant_kv descriptor over this cache's buffers.</summary>
        internal HeedQuantKv Layout { get; }

        /// <summary>Batch items.</summary>
        public int Batch { get; }

        /// <summary>Key/value heads.</summary>
        public int KvHeads { get; }

        /// <summary>Cached tokens.</summary>
        public int Tokens { get; }

        /// <summary>Key size.</summary>
        public int HeadDim { get; }

        /// <summary>Value size.</summary>
        public int ValueDim { get; }

        /// <summary>Bits per code: 8, 4 or 2.</summary>
        public int Bits { get; }

        /// <summary>Elements per quantization group: 32, 64 or 128.</summary>
        public int GroupSize { get; }

        /// <summary>Salient tokens the cache holds room for (per batch item).</summary>
        public int SalientCapacity { get; }

        /// <summary>Bytes of all the cache's tensors together.</summary>
        public long SizeInBytes => _buffers.Sum(b => (long)b.Length - 1);

        /// <summary>How many tokens of batch item <paramref name="batchItem"/> are kept at fp16.</summary>
        /// <param name="batchItem">0 .. Batch - 1.</param>
        /// <returns>The salient token count.</returns>
        public int SalientCount(int batchItem)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(batchItem);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(batchItem, Batch);
            return MemoryMarshal.Cast<byte, int>(_buffers[7].AsSpan())[batchItem];
        }

        /// <summary>
        /// Reconstructs K and V: fma(code, scale, zero) per element, the fp16 copy for salient tokens.
        /// </summary>
        /// <param name="keys">Empty, or [batch, kvHeads, tokens, headDim].</param>
        /// <param name="values">Empty, or [batch, kvHeads, tokens, valueDim].</param>
        public void Dequantize(Span<float> keys, Span<float> values)
        {
            long rows = (long)Batch * KvHeads * Tokens;
            LkCheckOptional(keys.Length, rows * HeadDim, nameof(keys), "batch x kvHeads x tokens x headDim");
            LkCheckOptional(values.Length, rows * ValueDim, nameof(values), "batch x kvHeads x tokens x valueDim");
            fixed (float* k = keys)
            fixed (float* v = values)
            {
                HeedTensor tk = Host(k, HeedDType.F32, Batch, KvHeads, Tokens, HeadDim);
                HeedTensor tv = Host(v, HeedDType.F32, Batch, KvHeads, Tokens, ValueDim);
                HeedQuantKv layout = Layout;
                HeedError.ThrowIfFailed(HeedLinearKvNative.heed_kv_dequantize(&layout, keys.IsEmpty ? null : &tk, values.IsEmpty ? null : &tv),
                    "heed_kv_dequantize");
            }
            GC.KeepAlive(this);
        }
    }

    private static void LkCheckLength(long actual, long expected, string name, string what)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{name} has {actual} elements; expected {expected} ({what}).", name);
        }
    }

    private static void LkCheckOptional(long actual, long expected, string name, string what)
    {
        if (actual != 0 && actual != expected)
        {
            throw new ArgumentException($"{name} has {actual} elements; expected 0 (none) or {expected} ({what}).", name);
        }
    }
}
