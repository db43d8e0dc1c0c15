using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Heed.Interop;
using Heed.Interop.Llama;
using Heed.Interop.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heed.Llama;

/// <summary>
/// The process-wide llama.cpp backend: loaded once, on first use. Checks the struct layouts,
/// loads the compute backends (CPU always; CUDA when its module and a GPU are there) and routes
/// llama.cpp's log to an <see cref="ILogger"/>.
/// </summary>
public static unsafe class LlamaBackend
{
    private static readonly Lock InitLock = new();
    private static volatile bool _initialized;
    private static ILogger _logger = NullLogger.Instance;

    [ThreadStatic] private static List<string>? _capturedErrors;

    /// <summary>Where llama.cpp's log goes. Debug and info lines go out at Debug level.</summary>
    public static ILogger Logger
    {
        get => _logger;
        set => _logger = value ?? NullLogger.Instance;
    }

    /// <summary>Loads and checks the native libraries. Safe to call many times from any thread.</summary>
    /// <exception cref="DllNotFoundException">A native library is missing; the message says which and how to build it.</exception>
    /// <exception cref="HeedNativeException">The native libraries do not match this assembly.</exception>
    public static void EnsureInitialized()
    {
        if (_initialized)
        {
            return;
        }
        lock (InitLock)
        {
            if (_initialized)
            {
                return;
            }
            NativeLibraryResolver.Install();
            NativeAbiCheck.Verify();
            LlamaNative.llama_log_set(&OnLog, IntPtr.Zero);
            LoadBackendModules(NativeLibraryResolver.NativeDirectory);
            LlamaNative.llama_backend_init();
            _initialized = true;
            LogBackendChoice();
        }
    }

    // Heed's backend modules are libheed-ggml-*.so, which ggml_backend_load_all does not look
    // for; libheed loads them by path with ggml's rule (best CPU variant, modules that fail to open skipped).
    private static void LoadBackendModules(string directory)
    {
        HeedError.ThrowIfFailed(HeedNative.heed_load_backend_modules(directory, out int loaded), "heed_load_backend_modules");
        if (loaded == 0)
        {
            throw new HeedNativeException(
                $"No ggml backend module (libheed-ggml-cpu*.so) loads from '{directory}'. Run ./build.sh native, or set HEED_NATIVE_DIR to the folder that holds Heed's native libraries.");
        }
    }

    // CUDA runs when ggml's CUDA module is installed (the Heed.Runtime.Cuda13 package), loads and
    // finds a GPU; otherwise the CPU does. A CUDA install that falls back says so once, with why.
    private static void LogBackendChoice()
    {
        string? cudaModule = Directory.EnumerateFiles(NativeLibraryResolver.NativeDirectory, "*ggml-cuda*.so").FirstOrDefault();
        ComputeDevice? gpu = Devices.FirstOrDefault(d => d.IsGpu);
        if (gpu is not null)
        {
            _logger.LogInformation("Heed runs on {Device} ({Description})", gpu.Name, gpu.Description);
            return;
        }
        if (cudaModule is null)
        {
            return;
        }
        string reason;
        try
        {
            NativeLibrary.Free(NativeLibrary.Load(cudaModule));
            reason = "the CUDA backend loaded but found no GPU (no NVIDIA device or driver visible to this process)";
        }
        catch (DllNotFoundException e)
        {
            reason = $"the CUDA backend cannot load ({e.Message}); install the CUDA runtime and cuBLAS it was built for";
        }
        _logger.LogWarning("Heed falls back to the CPU: {Reason}", reason);
    }

    /// <summary>The compute devices ggml loaded, e.g. "CPU" and "CUDA0 (NVIDIA H100 80GB HBM3)".</summary>
    public static IReadOnlyList<ComputeDevice> Devices
    {
        get
        {
            EnsureInitialized();
            var devices = new List<ComputeDevice>();
            nuint count = GgmlNative.ggml_backend_dev_count();
            for (nuint i = 0; i < count; i++)
            {
                IntPtr device = GgmlNative.ggml_backend_dev_get(i);
                devices.Add(new ComputeDevice(
                    Marshal.PtrToStringUTF8(GgmlNative.ggml_backend_dev_name(device)) ?? "?",
                    Marshal.PtrToStringUTF8(GgmlNative.ggml_backend_dev_description(device)) ?? "",
                    GgmlNative.ggml_backend_dev_type(device) is GgmlNative.DeviceTypeGpu or GgmlNative.DeviceTypeIntegratedGpu));
            }
            return devices;
        }
    }

    /// <summary>True when a GPU backend was loaded and found a device.</summary>
    public static bool HasGpu => Devices.Any(d => d.IsGpu);

    /// <summary>libheed's version.</summary>
    public static string HeedVersion
    {
        get
        {
            EnsureInitialized();
            return Marshal.PtrToStringUTF8(HeedNative.heed_version()) ?? "?";
        }
    }

    /// <summary>The llama.cpp release the native libraries were built from.</summary>
    public static string LlamaRelease
    {
        get
        {
            EnsureInitialized();
            return Marshal.PtrToStringUTF8(HeedNative.heed_llama_release()) ?? "?";
        }
    }

    /// <summary>Collects llama.cpp's error lines logged on this thread while <paramref name="action"/> runs.</summary>
    internal static T CaptureErrors<T>(Func<T> action, out IReadOnlyList<string> errors)
    {
        var captured = new List<string>();
        List<string>? previous = _capturedErrors;
        _capturedErrors = captured;
        try
        {
            return action();
        }
        finally
        {
            _capturedErrors = previous;
            errors = captured;
        }
    }

    // ggml_log_level: 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 cont
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnLog(int level, byte* text, IntPtr userData)
    {
        try
        {
            string line = (Marshal.PtrToStringUTF8((IntPtr)text) ?? "").TrimEnd();
            if (line.Length == 0)
            {
                return;
            }
            if (level == 4)
            {
                _capturedErrors?.Add(line);
            }
            LogLevel logLevel = level switch
            {
                4 => LogLevel.Error,
                3 => LogLevel.Warning,
                _ => LogLevel.Debug,
            };
            if (_logger.IsEnabled(logLevel))
            {
                _logger.Log(logLevel, "llama.cpp: {Line}", line);
            }
        }
        catch
        {
            // A log line must never unwind into native code.
        }
    }
}

/// <summary>A compute device ggml can run on.</summary>
/// <param name="Name">ggml's name, e.g. "CPU" or "CUDA0".</param>
/// <param name="Description">The hardware, e.g. the GPU's name.</param>
/// <param name="IsGpu">True for GPUs.</param>
public sealed record ComputeDevice(string Name, string Description, bool IsGpu);
