using System.Runtime.InteropServices;
using Heed.Interop.Native;

namespace Heed.Attention;

/// <summary>
/// A contiguous tensor in CUDA device memory, allocated and freed through libheed (no CUDA runtime
/// needed in the process). Pass it to the <see cref="AttentionKernels"/> overloads that take device
/// tensors: the kernels then run on that GPU. Dispose it to free the memory.
/// </summary>
public sealed class DeviceTensor : IDisposable
{
    private readonly SafeDeviceMemoryHandle _memory;
    private readonly long[] _shape;

    private DeviceTensor(SafeDeviceMemoryHandle memory, TensorElementType elementType, long[] shape, int device)
    {
        _memory = memory;
        _shape = shape;
        ElementType = elementType;
        Device = device;
    }

    /// <summary>The element type.</summary>
    public TensorElementType ElementType { get; }

    /// <summary>The CUDA device that holds the memory.</summary>
    public int Device { get; }

    /// <summary>The shape, outermost dimension first (1 to 4 dimensions).</summary>
    public IReadOnlyList<long> Shape => _shape;

    /// <summary>The number of elements.</summary>
    public long ElementCount => _shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The size in bytes.</summary>
    public long ByteCount => ElementCount * ElementSize(ElementType);

    /// <summary>True when libheed was built with CUDA and sees at least one GPU.</summary>
    public static bool IsCudaAvailable => HeedNative.heed_built_with_cuda() != 0 && HeedNative.heed_cuda_device_count() > 0;

    /// <summary>Allocates an uninitialized tensor on a GPU.</summary>
    /// <param name="elementType">The element type.</param>
    /// <param name="shape">1 to 4 positive sizes, outermost first.</param>
    /// <param name="device">The CUDA device index.</param>
    /// <exception cref="ArgumentException">The shape is empty, longer than 4, or has a size below 1.</exception>
    /// <exception cref="HeedNativeException">No CUDA device (status NoCuda) or a CUDA error.</exception>
    /// <exception cref="OutOfMemoryException">The GPU has not enough free memory.</exception>
    public static DeviceTensor Allocate(TensorElementType elementType, ReadOnlySpan<long> shape, int device = 0)
    {
        long[] dims = CheckShape(shape);
        ArgumentOutOfRangeException.ThrowIfNegative(device);
        long bytes = dims.Aggregate(1L, (a, b) => checked(a * b)) * ElementSize(elementType);
        HeedStatus status = HeedAttentionNative.heed_cuda_malloc(device, (nuint)bytes, out IntPtr ptr);
        HeedError.ThrowIfFailed(status, "heed_cuda_malloc");
        return new DeviceTensor(new SafeDeviceMemoryHandle(ptr), elementType, dims, device);
    }

    /// <summary>Allocates a tensor on a GPU and copies <paramref name="data"/> into it.</summary>
    /// <typeparam name="T">float, Half, int or byte; its size must match <paramref name="elementType"/> (ushort for bfloat16 bits).</typeparam>
    /// <param name="data">The elements, row-major, as many as the shape holds.</param>
    /// <param name="elementType">The element type on the device.</param>
    /// <param name="shape">1 to 4 positive sizes, outermost first.</param>
    /// <param name="device">The CUDA device index.</param>
    public static DeviceTensor FromHost<T>(ReadOnlySpan<T> data, TensorElementType elementType, ReadOnlySpan<long> shape, int device = 0)
        where T : unmanaged
    {
        DeviceTensor tensor = Allocate(elementType, shape, device);
        try
        {
            tensor.CopyFrom(data);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Copies host elements into the whole tensor (synchronous).</summary>
    /// <exception cref="ArgumentException">The element size or count does not match.</exception>
    public unsafe void CopyFrom<T>(ReadOnlySpan<T> data) where T : unmanaged
    {
        CheckHostSpan<T>(data.Length, nameof(data));
        fixed (T* src = data)
        {
            HeedError.ThrowIfFailed(HeedAttentionNative.heed_cuda_memcpy((void*)Pointer, src, (nuint)ByteCount, 0), "heed_cuda_memcpy");
        }
    }

    /// <summary>Copies the whole tensor into host memory (synchronous: waits for kernels before it).</summary>
    /// <exception cref="ArgumentException">The element size or count does not match.</exception>
    public unsafe void CopyTo<T>(Span<T> destination) where T : unmanaged
    {
        CheckHostSpan<T>(destination.Length, nameof(destination));
        fixed (T* dst = destination)
        {
            HeedError.ThrowIfFailed(HeedAttentionNative.heed_cuda_memcpy(dst, (void*)Pointer, (nuint)ByteCount, 1), "heed_cuda_memcpy");
        }
    }

    /// <summary>Frees the device memory.</summary>
    public void Dispose() => _memory.Dispose();

    internal IntPtr Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_memory.IsClosed, this);
            return _memory.DangerousGetHandle();
        }
    }

    internal unsafe HeedTensor Descriptor()
    {
        HeedTensor t = default;
        t.data = (void*)Pointer;
        t.dtype = (int)ElementType;
        t.ndim = _shape.Length;
        for (int i = 0; i < _shape.Length; i++)
        {
            t.shape[i] = _shape[i];
            t.strides[i] = 0; // contiguous
        }
        return t;
    }

    internal static int ElementSize(TensorElementType type) => type switch
    {
        TensorElementType.Float32 or TensorElementType.Int32 => 4,
        TensorElementType.Float16 or TensorElementType.BFloat16 => 2,
        TensorElementType.UInt8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown tensor element type."),
    };

    private static long[] CheckShape(ReadOnlySpan<long> shape)
    {
        if (shape.Length is < 1 or > 4)
        {
            throw new ArgumentException($"A tensor has 1 to 4 dimensions, got {shape.Length}.", nameof(shape));
        }
        foreach (long s in shape)
        {
            if (s < 1)
            {
                throw new ArgumentException($"Every size in the shape must be at least 1, got [{string.Join(", ", shape.ToArray())}].", nameof(shape));
            }
        }
        return shape.ToArray();
    }

    private unsafe void CheckHostSpan<T>(int length, string name) where T : unmanaged
    {
        if (sizeof(T) != ElementSize(ElementType))
        {
            throw new ArgumentException($"{typeof(T).Name} has {sizeof(T)} bytes but the tensor holds {ElementType} ({ElementSize(ElementType)} bytes).", name);
        }
        if (length != ElementCount)
        {
            throw new ArgumentException($"The tensor holds {ElementCount} elements, the span {length}.", name);
        }
    }

    private sealed class SafeDeviceMemoryHandle : SafeHandle
    {
        public SafeDeviceMemoryHandle(IntPtr ptr) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(ptr);

        public override bool IsInvalid => handle == IntPtr.Zero;

        protected override bool ReleaseHandle() => HeedAttentionNative.heed_cuda_free(handle) == HeedStatus.Ok;
    }
}
