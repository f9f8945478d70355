namespace Tern.Machine;
