using System.Reflection;
using System.Runtime.InteropServices;

namespace Heed.Interop;

/// <summary>
/// Finds the native libraries for this assembly's declarations: <c>HEED_NATIVE_DIR</c> when set,
/// else next to the assemblies, else under <c>runtimes/linux-x64/native</c> (a NuGet layout).
/// A missing file is an exception that names it and says how to build it.
/// </summary>
public static class NativeLibraryResolver
{
    private static int _installed;

    /// <summary>The folder the libraries are loaded from.</summary>
    public static string NativeDirectory { get; } = FindNativeDirectory();

    /// <summary>Installs the resolver once; later calls do nothing.</summary>
    public static void Install()
    {
        if (Interlocked.Exchange(ref _installed, 1) == 0)
        {
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);
        }
    }

    /// <summary>The full path of a library by its short name, e.g. "heed-llama" → ".../libheed-llama.so".</summary>
    public static string PathOf(string name) => Path.Combine(NativeDirectory, FileNameOf(name));

    private static string FileNameOf(string name) =>
        OperatingSystem.IsWindows() ? name + ".dll" : OperatingSystem.IsMacOS() ? "lib" + name + ".dylib" : "lib" + name + ".so";

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        string path = PathOf(name);
        if (!File.Exists(path))
        {
            throw new DllNotFoundException(
                $"Heed's native library '{FileNameOf(name)}' was not found in '{NativeDirectory}'. " +
                "Run ./build.sh in the Heed repository (it builds llama.cpp and libheed), " +
                "or set HEED_NATIVE_DIR to the folder that holds the native libraries.");
        }
        return NativeLibrary.Load(path);
    }

    private static string FindNativeDirectory()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("HEED_NATIVE_DIR");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            return Path.GetFullPath(fromEnvironment);
        }
        string baseDirectory = AppContext.BaseDirectory;
        string rid = RuntimeInformation.RuntimeIdentifier.StartsWith("linux-", StringComparison.Ordinal)
            ? "linux-" + RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()
            : RuntimeInformation.RuntimeIdentifier;
        string[] candidates =
        [
            baseDirectory,
            Path.Combine(baseDirectory, "runtimes", rid, "native"),
        ];
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, FileNameOf(NativeLibraryNames.Heed)))) ?? baseDirectory;
    }
}
