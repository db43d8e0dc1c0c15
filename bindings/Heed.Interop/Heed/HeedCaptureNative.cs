using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Heed.Interop.Native;

#pragma warning disable CS1591 // each declaration is the heed/capture.h function of the same name

/// <summary>libheed's attention capture (heed/capture.h).</summary>
public static unsafe partial class HeedCaptureNative
{
    private const string Lib = NativeLibraryNames.Heed;

    static HeedCaptureNative() => NativeLibraryResolver.Install();

    /// <summary>heed_capture_options.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Options
    {
        public int* layers;
        public int n_layers;
        public int store_dtype;
        public int reference_softmax;
    }

    [LibraryImport(Lib)] public static partial HeedStatus heed_capture_create(Options* options, out SafeHeedCaptureHandle session);
    [LibraryImport(Lib)] public static partial void heed_capture_free(IntPtr session);
    [LibraryImport(Lib)] public static partial IntPtr heed_capture_eval_callback();
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial HeedStatus heed_capture_use_ggml(SafeHeedCaptureHandle session, string ggmlBaseLibrary);
    [LibraryImport(Lib)] public static partial HeedStatus heed_capture_begin(SafeHeedCaptureHandle session, int position, int keepQueries, int keepKeys);
    [LibraryImport(Lib)] public static partial HeedStatus heed_capture_drop(SafeHeedCaptureHandle session, int p0, int p1);
    [LibraryImport(Lib)] public static partial HeedStatus heed_capture_clear(SafeHeedCaptureHandle session);
    [LibraryImport(Lib)]
    public static partial HeedStatus heed_capture_stats(SafeHeedCaptureHandle session, int layer, out int nQueries, out int nKeys,
        out int nHead, out int nHeadKv, out int headDim, out nuint bytes);
    [LibraryImport(Lib)] public static partial HeedStatus heed_capture_key_positions(SafeHeedCaptureHandle session, int layer, int* positions, int capacity);
    [LibraryImport(Lib)]
    public static partial HeedStatus heed_capture_aggregate(SafeHeedCaptureHandle session, int layer, int qBegin, int qEnd, float scale,
        int causal, int useCuda, float* mass, int capacity);
    [LibraryImport(Lib)]
    public static partial HeedStatus heed_capture_get_keys(SafeHeedCaptureHandle session, int layer, int p0, int p1, void* rows,
        int* positions, int capacity, out int nRows);
    [LibraryImport(Lib)]
    public static partial HeedStatus heed_capture_put_keys(SafeHeedCaptureHandle session, int layer, void* rows, int* positions,
        int nRows, int storeDtype, int nHeadKv, int headDim);
    [LibraryImport(Lib)]
    public static partial HeedStatus heed_capture_reference_mass(SafeHeedCaptureHandle session, int layer, double* mass, int capacity, out int nCells);
}

/// <summary>Owns a heed_capture session; frees it with heed_capture_free.</summary>
public sealed class SafeHeedCaptureHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    /// <summary>Used by the marshaller.</summary>
    public SafeHeedCaptureHandle() : base(ownsHandle: true) { }

    /// <inheritdoc />
    protected override bool ReleaseHandle()
    {
        HeedCaptureNative.heed_capture_free(handle);
        return true;
    }
}
#pragma warning restore CS1591
