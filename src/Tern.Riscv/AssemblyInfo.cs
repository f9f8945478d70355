using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Tern.Riscv.Tests")]
