using System.Runtime.CompilerServices;

// Structs here are blittable as declared: a C# bool is one byte, as C's bool is.
[assembly: DisableRuntimeMarshalling]
[assembly: InternalsVisibleTo("Heed")]
