namespace Tern.Riscv;
