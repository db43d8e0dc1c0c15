using System.Runtime.InteropServices;

namespace Heed.Interop.Native;

#pragma warning disable CS1591 // each declaration is the heed.h function of the same name

/// <summary>libheed's status and llama.cpp layout entry points (heed/status.h, heed/llama_abi.h, heed/tensor.h).</summary>
public static unsafe partial class HeedNative
{
    private const string Lib = NativeLibraryNames.Heed;

    static HeedNative() => NativeLibraryResolver.Install();

    /// <summary>HEED_ABI_VERSION this binding was written for.</summary>
    public const int AbiVersion = 1;

    [LibraryImport(Lib)] public static partial IntPtr heed_version();
    [LibraryImport(Lib)] public static partial int heed_abi_version();
    [LibraryImport(Lib)] public static partial IntPtr heed_llama_release();
    [LibraryImport(Lib)] public static partial IntPtr heed_last_error();
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial HeedStatus heed_load_backend_modules(string directory, out int loaded);
    [LibraryImport(Lib)] public static partial void heed_clear_error();
    [LibraryImport(Lib)] public static partial IntPtr heed_status_name(HeedStatus status);
    [LibraryImport(Lib)] public static partial int heed_built_with_cuda();
    [LibraryImport(Lib)] public static partial int heed_cuda_device_count();

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial HeedStatus heed_llama_struct_size(string typeName, out nuint size);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial HeedStatus heed_llama_field_layout(string typeName, string fieldName, out nuint offset, out nuint size);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial HeedStatus heed_llama_field_count(string typeName, out int count);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial HeedStatus heed_llama_field_at(string typeName, int index, out IntPtr fieldName, out nuint offset, out nuint size);
}

/// <summary>heed_status.</summary>
public enum HeedStatus
{
    Ok = 0,
    InvalidArgument = 1,
    OutOfMemory = 2,
    NoCuda = 3,
    Cuda = 4,
    Unsupported = 5,
    NotFound = 6,
    Internal = 7,
}
#pragma warning restore CS1591
