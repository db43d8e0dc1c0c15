using Heed.Interop.Native;

namespace Heed.Attention;

/// <summary>
/// libheed's fused attention kernels: attention aggregation (how much attention query rows pay to
/// each key), flash attention, block-sparse attention and its block-mask estimate. Span overloads
/// run on the CPU (vectorized, threaded); <see cref="DeviceTensor"/> overloads run on the GPU that
/// holds the tensors. Arguments are checked here first; bad ones throw <see cref="ArgumentException"/>
/// before any native call. Accumulation is in float32. A scale of 0 means 1/sqrt(head size).
/// </summary>
public static unsafe partial class AttentionKernels
{
    /// <summary>
    /// Per-key attention mass: output[j] = sum over heads h and query rows i of softmax_j(scale q_i,h · k_j),
    /// the softmax taken over the keys row i sees (with <paramref name="causal"/>, keys whose position is at
    /// most the row's). A row that sees no key adds nothing.
    /// </summary>
    /// <typeparam name="T">float or <see cref="Half"/>.</typeparam>
    /// <param name="queries">[queryPositions.Length, heads, headDim].</param>
    /// <param name="queryPositions">The position of each query row.</param>
    /// <param name="keys">[keyPositions.Length, kvHeads, headDim].</param>
    /// <param name="keyPositions">The position of each key.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key heads; <paramref name="heads"/> must be a multiple.</param>
    /// <param name="headDim">Head size.</param>
    /// <param name="output">[keyPositions.Length]: the mass summed over heads and rows.</param>
    /// <param name="outputPerHead">Empty, or [heads, keyPositions.Length]: the mass per head.</param>
    /// <param name="causal">Whether a row sees only keys at or before its position.</param>
    /// <param name="scale">The score scale; 0 for 1/sqrt(headDim).</param>
    public static void Aggregate<T>(ReadOnlySpan<T> queries, ReadOnlySpan<int> queryPositions, ReadOnlySpan<T> keys,
        ReadOnlySpan<int> keyPositions, int heads, int kvHeads, int headDim, Span<float> output, Span<float> outputPerHead = default,
        bool causal = true, float scale = 0) where T : unmanaged
    {
        TensorElementType type = ElementTypeOf<T>();
        CheckScale(scale);
        CheckHeads(heads, kvHeads, headDim);
        int nq = queryPositions.Length, nk = keyPositions.Length;
        if (nq < 1 || nk < 1)
        {
            throw new ArgumentException($"Give at least one query row and one key (got {nq} query positions, {nk} key positions).",
                nq < 1 ? nameof(queryPositions) : nameof(keyPositions));
        }
        CheckLength(queries.Length, (long)nq * heads * headDim, nameof(queries), "queryPositions.Length x heads x headDim");
        CheckLength(keys.Length, (long)nk * kvHeads * headDim, nameof(keys), "keyPositions.Length x kvHeads x headDim");
        CheckLength(output.Length, nk, nameof(output), "keyPositions.Length");
        if (!outputPerHead.IsEmpty)
        {
            CheckLength(outputPerHead.Length, (long)heads * nk, nameof(outputPerHead), "heads x keyPositions.Length");
        }
        fixed (T* q = queries)
        fixed (T* k = keys)
        fixed (int* qp = queryPositions)
        fixed (int* kp = keyPositions)
        fixed (float* o = output)
        fixed (float* oh = outputPerHead)
        {
            HeedTensor tq = Host(q, type, nq, heads, headDim), tk = Host(k, type, nk, kvHeads, headDim);
            HeedTensor tqp = Host(qp, TensorElementType.Int32, nq), tkp = Host(kp, TensorElementType.Int32, nk);
            HeedTensor to = Host(o, TensorElementType.Float32, nk), th = Host(oh, TensorElementType.Float32, heads, nk);
            HeedError.ThrowIfFailed(HeedAttentionNative.heed_attention_aggregate(&tq, &tqp, &tk, &tkp, scale, causal ? 1 : 0, &to,
                outputPerHead.IsEmpty ? null : &th), "heed_attention_aggregate");
        }
    }

    /// <summary>Flash attention forward: output = softmax(scale Q Kᵀ) V per batch and head, without the score matrix.</summary>
    /// <typeparam name="T">float or <see cref="Half"/>.</typeparam>
    /// <param name="queries">[Batch, Heads, QueryLength, HeadDim].</param>
    /// <param name="keys">[Batch, KvHeads, KeyLength, HeadDim].</param>
    /// <param name="values">[Batch, KvHeads, KeyLength, HeadDim].</param>
    /// <param name="output">[Batch, Heads, QueryLength, HeadDim].</param>
    /// <param name="shape">The sizes.</param>
    /// <param name="causal">Row i sees keys 0..i (aligned top-left, as PyTorch's is_causal).</param>
    /// <param name="scale">The score scale; 0 for 1/sqrt(HeadDim).</param>
    /// <param name="logSumExp">Empty, or [Batch, Heads, QueryLength]: each row's natural-log log-sum-exp.</param>
    public static void FlashAttention<T>(ReadOnlySpan<T> queries, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> output,
        AttentionShape shape, bool causal = false, float scale = 0, Span<float> logSumExp = default) where T : unmanaged
    {
        TensorElementType type = CheckAttention<T>(queries.Length, keys.Length, values.Length, output.Length, logSumExp.Length, shape, scale);
        var s = shape;
        fixed (T* q = queries)
        fixed (T* k = keys)
        fixed (T* v = values)
        fixed (T* o = output)
        fixed (float* l = logSumExp)
        {
            HeedTensor tq = Host(q, type, s.Batch, s.Heads, s.QueryLength, s.HeadDim), to = Host(o, type, s.Batch, s.Heads, s.QueryLength, s.HeadDim);
            HeedTensor tk = Host(k, type, s.Batch, s.KvHeads, s.KeyLength, s.HeadDim), tv = Host(v, type, s.Batch, s.KvHeads, s.KeyLength, s.HeadDim);
            HeedTensor tl = Host(l, TensorElementType.Float32, s.Batch, s.Heads, s.QueryLength);
            HeedError.ThrowIfFailed(HeedAttentionNative.heed_flash_attention_forward(&tq, &tk, &tv, scale, causal ? 1 : 0, &to,
                logSumExp.IsEmpty ? null : &tl), "heed_flash_attention_forward");
        }
    }

    /// <summary>
    /// Block-sparse attention forward: flash attention where query block qb sees key block kb only if
    /// blockMask[b, h, qb, kb] != 0. A row that sees no key gets zeros (and log-sum-exp -infinity).
    /// </summary>
    /// <typeparam name="T">float or <see cref="Half"/>.</typeparam>
    /// <param name="queries">[Batch, Heads, QueryLength, HeadDim].</param>
    /// <param name="keys">[Batch, KvHeads, KeyLength, HeadDim].</param>
    /// <param name="values">[Batch, KvHeads, KeyLength, HeadDim].</param>
    /// <param name="blockMask">[Batch, Heads, query blocks, key blocks] (see <see cref="AttentionShape.MaskElements"/>).</param>
    /// <param name="blockSize">64 or 128, for queries and keys alike.</param>
    /// <param name="output">[Batch, Heads, QueryLength, HeadDim].</param>
    /// <param name="shape">The sizes.</param>
    /// <param name="causal">Row i sees keys 0..i as well.</param>
    /// <param name="scale">The score scale; 0 for 1/sqrt(HeadDim).</param>
    /// <param name="logSumExp">Empty, or [Batch, Heads, QueryLength].</param>
    public static void BlockSparseAttention<T>(ReadOnlySpan<T> queries, ReadOnlySpan<T> keys, ReadOnlySpan<T> values,
        ReadOnlySpan<byte> blockMask, int blockSize, Span<T> output, AttentionShape shape, bool causal = false, float scale = 0,
        Span<float> logSumExp = default) where T : unmanaged
    {
        TensorElementType type = CheckAttention<T>(queries.Length, keys.Length, values.Length, output.Length, logSumExp.Length, shape, scale);
        CheckBlock(blockSize);
        CheckLength(blockMask.Length, shape.MaskElements(blockSize), nameof(blockMask), "Batch x Heads x query blocks x key blocks");
        var s = shape;
        fixed (T* q = queries)
        fixed (T* k = keys)
        fixed (T* v = values)
        fixed (T* o = output)
        fixed (byte* m = blockMask)
        fixed (float* l = logSumExp)
        {
            HeedTensor tq = Host(q, type, s.Batch, s.Heads, s.QueryLength, s.HeadDim), to = Host(o, type, s.Batch, s.Heads, s.QueryLength, s.HeadDim);
            HeedTensor tk = Host(k, type, s.Batch, s.KvHeads, s.KeyLength, s.HeadDim), tv = Host(v, type, s.Batch, s.KvHeads, s.KeyLength, s.HeadDim);
            HeedTensor tm = Host(m, TensorElementType.UInt8, s.Batch, s.Heads, AttentionShape.BlockCount(s.QueryLength, blockSize),
                AttentionShape.BlockCount(s.KeyLength, blockSize));
            HeedTensor tl = Host(l, TensorElementType.Float32, s.Batch, s.Heads, s.QueryLength);
            HeedError.ThrowIfFailed(HeedAttentionNative.heed_block_sparse_attention_forward(&tq, &tk, &tv, &tm, blockSize, scale,
                causal ? 1 : 0, &to, logSumExp.IsEmpty ? null : &tl), "heed_block_sparse_attention_forward");
        }
    }

    /// <summary>
    /// Estimates a block mask from mean-pooled query and key blocks: per query block, the fewest key blocks
    /// whose softmaxed pooled scores reach <paramref name="coverage"/>, plus always the first and the diagonal block.
    /// </summary>
    /// <typeparam name="T">float or <see cref="Half"/>.</typeparam>
    /// <param name="queries">[Batch, Heads, QueryLength, HeadDim].</param>
    /// <param name="keys">[Batch, KvHeads, KeyLength, HeadDim].</param>
    /// <param name="shape">The sizes.</param>
    /// <param name="blockSize">64 or 128.</param>
    /// <param name="coverage">In (0, 1]: the softmax mass the kept blocks must reach.</param>
    /// <param name="blockMask">[Batch, Heads, query blocks, key blocks]; every element is set to 0 or 1.</param>
    /// <param name="causal">Only key blocks up to the diagonal are candidates.</param>
    /// <param name="scale">The score scale; 0 for 1/sqrt(HeadDim).</param>
    public static void EstimateBlockMask<T>(ReadOnlySpan<T> queries, ReadOnlySpan<T> keys, AttentionShape shape, int blockSize,
        float coverage, Span<byte> blockMask, bool causal = false, float scale = 0) where T : unmanaged
    {
        TensorElementType type = ElementTypeOf<T>();
        shape.Validate(nameof(shape));
        CheckScale(scale);
        CheckBlock(blockSize);
        CheckCoverage(coverage);
        CheckLength(queries.Length, shape.QueryElements, nameof(queries), "Batch x Heads x QueryLength x HeadDim");
        CheckLength(keys.Length, shape.KeyElements, nameof(keys), "Batch x KvHeads x KeyLength x HeadDim");
        CheckLength(blockMask.Length, shape.MaskElements(blockSize), nameof(blockMask), "Batch x Heads x query blocks x key blocks");
        var s = shape;
        fixed (T* q = queries)
        fixed (T* k = keys)
        fixed (byte* m = blockMask)
        {
            HeedTensor tq = Host(q, type, s.Batch, s.Heads, s.QueryLength, s.HeadDim);
            HeedTensor tk = Host(k, type, s.Batch, s.KvHeads, s.KeyLength, s.HeadDim);
            HeedTensor tm = Host(m, TensorElementType.UInt8, s.Batch, s.Heads, AttentionShape.BlockCount(s.QueryLength, blockSize),
                AttentionShape.BlockCount(s.KeyLength, blockSize));
            HeedError.ThrowIfFailed(HeedAttentionNative.heed_block_mask_estimate(&tq, &tk, blockSize, coverage, scale, causal ? 1 : 0, &tm),
                "heed_block_mask_estimate");
        }
    }

    // ---- device tensors --------------------------------------------------------------------

    /// <summary>
    /// <see cref="Aggregate{T}"/> on the GPU: queries [n_q, heads, headDim] and keys [n_k, kvHeads, headDim]
    /// (Float32, Float16 or BFloat16, the same), positions Int32 [n_q] and [n_k], output Float32 [n_k],
    /// outputPerHead null or Float32 [heads, n_k]. Returns when the work is queued; copying a result back waits for it.
    /// </summary>
    /// <param name="queries">[n_q, heads, headDim].</param>
    /// <param name="queryPositions">Int32 [n_q].</param>
    /// <param name="keys">[n_k, kvHeads, headDim].</param>
    /// <param name="keyPositions">Int32 [n_k].</param>
    /// <param name="output">Float32 [n_k].</param>
    /// <param name="outputPerHead">Null, or Float32 [heads, n_k].</param>
    /// <param name="causal">Whether a row sees only keys at or before its position.</param>
    /// <param name="scale">The score scale; 0 for 1/sqrt(headDim).</param>
    public static void Aggregate(DeviceTensor queries, DeviceTensor queryPositions, DeviceTensor keys, DeviceTensor keyPositions,
        DeviceTensor output, DeviceTensor? outputPerHead = null, bool causal = true, float scale = 0)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(queryPositions);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(keyPositions);
        ArgumentNullException.ThrowIfNull(output);
        CheckScale(scale);
        CheckFloat(queries, nameof(queries), 3);
        CheckSameType(keys, queries, nameof(keys), 3);
        long nq = queries.Shape[0], heads = queries.Shape[1], d = queries.Shape[2], nk = keys.Shape[0], kvHeads = keys.Shape[1];
        CheckHeads((int)heads, (int)kvHeads, (int)d);
        CheckDims(keys, nameof(keys), queries.ElementType, nk, kvHeads, d);
        CheckDims(queryPositions, nameof(queryPositions), TensorElementType.Int32, nq);
        CheckDims(keyPositions, nameof(keyPositions), TensorElementType.Int32, nk);
        CheckDims(output, nameof(output), TensorElementType.Float32, nk);
        if (outputPerHead is not null)
        {
            CheckDims(outputPerHead, nameof(outputPerHead), TensorElementType.Float32, heads, nk);
        }
        CheckSameDevice(queries, queryPositions, keys, keyPositions, output, outputPerHead);
        HeedTensor tq = queries.Descriptor(), tqp = queryPositions.Descriptor(), tk = keys.Descriptor(), tkp = keyPositions.Descriptor();
        HeedTensor to = output.Descriptor(), th = outputPerHead is null ? default : outputPerHead.Descriptor();
        HeedError.ThrowIfFailed(HeedAttentionNative.heed_attention_aggregate(&tq, &tqp, &tk, &tkp, scale, causal ? 1 : 0, &to,
            outputPerHead is null ? null : &th), "heed_attention_aggregate");
    }

    /// <summary>
    /// <see cref="FlashAttention{T}"/> on the GPU: Float16 or BFloat16, HeadDim 64 or 128. Queries and output
    /// [B, H, Nq, d], keys and values [B, Hkv, Nk, d], logSumExp null or Float32 [B, H, Nq].
    /// </summary>
    /// <param name="queries">[B, H, Nq, d].</param>
    /// <param name="keys">[B, Hkv, Nk, d].</param>
    /// <param name="values">[B, Hkv, Nk, d].</param>
    /// <param name="output">[B, H, Nq, d], the queries' element type.</param>
    /// <param name="logSumExp">Null, or Float32 [B, H, Nq].</param>
    /// <param name="causal">Row i sees keys 0..i.</param>
    /// <param name="scale">The score scale; 0 for 1/sqrt(d).</param>
    public static void FlashAttention(DeviceTensor queries, DeviceTensor keys, DeviceTensor values, DeviceTensor output,
        DeviceTensor? logSumExp = null, bool causal = false, float scale = 0)
    {
        CheckDeviceAttention(queries, keys, values, output, logSumExp, scale);
        HeedTensor tq = queries.Descriptor(), tk = keys.Descriptor(), tv = values.Descriptor(), to = output.Descriptor();
        HeedTensor tl = logSumExp is null ? default : logSumExp.Descriptor();
        HeedError.ThrowIfFailed(HeedAttentionNative.heed_flash_attention_forward(&tq, &tk, &tv, scale, causal ? 1 : 0, &to,
            logSumExp is null ? null : &tl), "heed_flash_attention_forward");
    }

    /// <summary><see cref="BlockSparseAttention{T}"/> on the GPU (Float16 or BFloat16, HeadDim 64 or 128; mask UInt8).</summary>
    /// <param name="queries">[B, H, Nq, d].</param>
    /// <param name="keys">[B, Hkv, Nk, d].</param>
    /// <param name="values">[B, Hkv, Nk, d].</param>
    /// <param name="blockMask">UInt8 [B, H, query blocks, key blocks].</param>
    /// <param name="blockSize">64 or 128.</param>
    /// <param name="output">[B, H, Nq, d].</param>
    /// <param name="logSumExp">Null, or Float32 [B, H, Nq].</param>
    /// <param name="causal">Row i sees keys 0..i as well.</param>
    /// <param name="scale">The score scale; 0 for 1/sqrt(d).</param>
    public static void BlockSparseAttention(DeviceTensor queries, DeviceTensor keys, DeviceTensor values, DeviceTensor blockMask,
        int blockSize, DeviceTensor output, DeviceTensor? logSumExp = null, bool causal = false, float scale = 0)
    {
        AttentionShape s = CheckDeviceAttention(queries, keys, values, output, logSumExp, scale);
        ArgumentNullException.ThrowIfNull(blockMask);
        CheckBlock(blockSize);
        CheckDims(blockMask, nameof(blockMask), TensorElementType.UInt8, s.Batch, s.Heads,
            AttentionShape.BlockCount(s.QueryLength, blockSize), AttentionShape.BlockCount(s.KeyLength, blockSize));
        CheckSameDevice(queries, blockMask);
        HeedTensor tq = queries.Descriptor(), tk = keys.Descriptor(), tv = values.Descriptor(), tm = blockMask.Descriptor(), to = output.Descriptor();
        HeedTensor tl = logSumExp is null ? default : logSumExp.Descriptor();
        HeedError.ThrowIfFailed(HeedAttentionNative.heed_block_sparse_attention_forward(&tq, &tk, &tv, &tm, blockSize, scale,
            causal ? 1 : 0, &to, logSumExp is null ? null : &tl), "heed_block_sparse_attention_forward");
    }

    /// <summary><see cref="EstimateBlockMask{T}"/> on the GPU.</summary>
    /// <param name="queries">[B, H, Nq, d].</param>
    /// <param name="keys">[B, Hkv, Nk, d], the queries' element type.</param>
    /// <param name="blockSize">64 or 128.</param>
    /// <param name="coverage">In (0, 1].</param>
    /// <param name="blockMask">UInt8 [B, H, query blocks, key blocks].</param>
    /// <param name="causal">Only key blocks up to the diagonal are candidates.</param>
    /// <param name="scale">The score scale; 0 for 1/sqrt(d).</param>
    public static void EstimateBlockMask(DeviceTensor queries, DeviceTensor keys, int blockSize, float coverage, DeviceTensor blockMask,
        bool causal = false, float scale = 0)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(blockMask);
        CheckScale(scale);
        CheckBlock(blockSize);
        CheckCoverage(coverage);
        CheckFloat(queries, nameof(queries), 4);
        CheckSameType(keys, queries, nameof(keys), 4);
        var s = new AttentionShape((int)queries.Shape[0], (int)queries.Shape[1], (int)keys.Shape[1], (int)queries.Shape[2],
            (int)keys.Shape[2], (int)queries.Shape[3]);
        s.Validate(nameof(queries));
        CheckDims(keys, nameof(keys), queries.ElementType, s.Batch, s.KvHeads, s.KeyLength, s.HeadDim);
        CheckDims(blockMask, nameof(blockMask), TensorElementType.UInt8, s.Batch, s.Heads,
            AttentionShape.BlockCount(s.QueryLength, blockSize), AttentionShape.BlockCount(s.KeyLength, blockSize));
        CheckSameDevice(queries, keys, blockMask);
        HeedTensor tq = queries.Descriptor(), tk = keys.Descriptor(), tm = blockMask.Descriptor();
        HeedError.ThrowIfFailed(HeedAttentionNative.heed_block_mask_estimate(&tq, &tk, blockSize, coverage, scale, causal ? 1 : 0, &tm),
            "heed_block_mask_estimate");
    }

    /// <summary>Chooses libheed's CPU path: the scalar reference loops or the fast path, and its thread count (0 = all cores).</summary>
    /// <remarks>Process-wide; for tests and measurements (<c>heed bench kernels</c>).</remarks>
    public static void ConfigureCpu(bool reference, int threads) =>
        HeedError.ThrowIfFailed(HeedAttentionNative.heed_attention_cpu_config(reference ? 1 : 0, threads), "heed_attention_cpu_config");

    // ---- checks ------------------------------------------------------------------------------

    private static TensorElementType ElementTypeOf<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? TensorElementType.Float32
        : typeof(T) == typeof(Half) ? TensorElementType.Float16
        : throw new ArgumentException($"Attention kernels on host spans take float or Half elements, not {typeof(T).Name}.", nameof(T));

    private static void CheckScale(float scale)
    {
        if (!float.IsFinite(scale) || scale < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "The scale must be finite and positive, or 0 for 1/sqrt(head size).");
        }
    }

    private static void CheckHeads(int heads, int kvHeads, int headDim)
    {
        if (heads < 1 || kvHeads < 1 || headDim < 1)
        {
            throw new ArgumentException($"heads ({heads}), kvHeads ({kvHeads}) and headDim ({headDim}) must be at least 1.", nameof(heads));
        }
        if (heads % kvHeads != 0)
        {
            throw new ArgumentException($"heads ({heads}) must be a multiple of kvHeads ({kvHeads}) for grouped-query attention.", nameof(kvHeads));
        }
    }

    private static void CheckBlock(int blockSize)
    {
        if (blockSize is not (64 or 128))
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "The block size must be 64 or 128.");
        }
    }

    private static void CheckCoverage(float coverage)
    {
        if (!(coverage > 0 && coverage <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(coverage), coverage, "The coverage must be in (0, 1].");
        }
    }

    private static void CheckLength(long actual, long expected, string name, string what)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{name} has {actual} elements; expected {expected} ({what}).", name);
        }
    }

    private static TensorElementType CheckAttention<T>(long q, long k, long v, long o, long lse, AttentionShape shape, float scale)
        where T : unmanaged
    {
        shape.Validate(nameof(shape));
        CheckScale(scale);
        CheckLength(q, shape.QueryElements, "queries", "Batch x Heads x QueryLength x HeadDim");
        CheckLength(k, shape.KeyElements, "keys", "Batch x KvHeads x KeyLength x HeadDim");
        CheckLength(v, shape.KeyElements, "values", "Batch x KvHeads x KeyLength x HeadDim");
        CheckLength(o, shape.QueryElements, "output", "Batch x Heads x QueryLength x HeadDim");
        if (lse != 0)
        {
            CheckLength(lse, shape.RowCount, "logSumExp", "Batch x Heads x QueryLength");
        }
        return ElementTypeOf<T>();
    }

    private static void CheckFloat(DeviceTensor t, string name, int rank)
    {
        if (t.ElementType is not (TensorElementType.Float32 or TensorElementType.Float16 or TensorElementType.BFloat16))
        {
            throw new ArgumentException($"{name} must hold Float32, Float16 or BFloat16, not {t.ElementType}.", name);
        }
        if (t.Shape.Count != rank)
        {
            throw new ArgumentException($"{name} must have {rank} dimensions, got {t.Shape.Count}.", name);
        }
    }

    private static void CheckSameType(DeviceTensor t, DeviceTensor like, string name, int rank)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.ElementType != like.ElementType)
        {
            throw new ArgumentException($"{name} holds {t.ElementType} but the queries hold {like.ElementType}; they must match.", name);
        }
        if (t.Shape.Count != rank)
        {
            throw new ArgumentException($"{name} must have {rank} dimensions, got {t.Shape.Count}.", name);
        }
    }

    private static void CheckDims(DeviceTensor t, string name, TensorElementType type, params long[] dims)
    {
        if (t.ElementType != type)
        {
            throw new ArgumentException($"{name} must hold {type}, not {t.ElementType}.", name);
        }
        if (!t.Shape.SequenceEqual(dims))
        {
            throw new ArgumentException($"{name} has shape [{string.Join(", ", t.Shape)}]; expected [{string.Join(", ", dims)}].", name);
        }
    }

    private static void CheckSameDevice(params DeviceTensor?[] tensors)
    {
        int device = tensors[0]!.Device;
        foreach (DeviceTensor? t in tensors)
        {
            if (t is not null && t.Device != device)
            {
                throw new ArgumentException($"All tensors of one call must be on the same GPU (found devices {device} and {t.Device}).");
            }
        }
    }

    private static AttentionShape CheckDeviceAttention(DeviceTensor queries, DeviceTensor keys, DeviceTensor values, DeviceTensor output,
        DeviceTensor? logSumExp, float scale)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(output);
        CheckScale(scale);
        CheckFloat(queries, nameof(queries), 4);
        CheckSameType(keys, queries, nameof(keys), 4);
        CheckSameType(values, queries, nameof(values), 4);
        CheckSameType(output, queries, nameof(output), 4);
        var s = new AttentionShape((int)queries.Shape[0], (int)queries.Shape[1], (int)keys.Shape[1], (int)queries.Shape[2],
            (int)keys.Shape[2], (int)queries.Shape[3]);
        s.Validate(nameof(queries));
        CheckDims(keys, nameof(keys), queries.ElementType, s.Batch, s.KvHeads, s.KeyLength, s.HeadDim);
        CheckDims(values, nameof(values), queries.ElementType, s.Batch, s.KvHeads, s.KeyLength, s.HeadDim);
        CheckDims(output, nameof(output), queries.ElementType, s.Batch, s.Heads, s.QueryLength, s.HeadDim);
        if (logSumExp is not null)
        {
            CheckDims(logSumExp, nameof(logSumExp), TensorElementType.Float32, s.Batch, s.Heads, s.QueryLength);
        }
        CheckSameDevice(queries, keys, values, output, logSumExp);
        return s;
    }

    private static HeedTensor Host(void* data, TensorElementType type, params long[] shape) => Host(data, (HeedDType)type, shape);

    // A contiguous host tensor descriptor (zero strides mean row-major).
    private static HeedTensor Host(void* data, HeedDType type, params long[] shape)
    {
        HeedTensor t = default;
        t.data = data;
        t.dtype = (int)type;
        t.ndim = shape.Length;
        for (int i = 0; i < shape.Length; i++)
        {
            t.shape[i] = shape[i];
        }
        return t;
    }
}
