using System.Runtime.InteropServices;

namespace Heed.Interop.Llama;

#pragma warning disable CS1591 // each declaration is the ggml-backend.h function of the same name

/// <summary>ggml entry points: listing devices.</summary>
public static unsafe partial class GgmlNative
{
    static GgmlNative() => NativeLibraryResolver.Install();

    /// <summary>ggml_backend_dev_type: CPU, GPU, integrated GPU, accelerator.</summary>
    public const int DeviceTypeCpu = 0, DeviceTypeGpu = 1, DeviceTypeIntegratedGpu = 2, DeviceTypeAccelerator = 3;

    [LibraryImport(NativeLibraryNames.Ggml)] public static partial nuint ggml_backend_dev_count();
    [LibraryImport(NativeLibraryNames.Ggml)] public static partial IntPtr ggml_backend_dev_get(nuint index);
    [LibraryImport(NativeLibraryNames.GgmlBase)] public static partial IntPtr ggml_backend_dev_name(IntPtr device);
    [LibraryImport(NativeLibraryNames.GgmlBase)] public static partial IntPtr ggml_backend_dev_description(IntPtr device);
    [LibraryImport(NativeLibraryNames.GgmlBase)] public static partial int ggml_backend_dev_type(IntPtr device);
}
#pragma warning restore CS1591
