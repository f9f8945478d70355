// An actor that gathers a VM's console output and signals when some text has appeared.
using System.Text;
using Akka.Actor;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Tests;

internal sealed class ConsoleCollector : ReceiveActor
{
    private readonly StringBuilder _text = new();

    public ConsoleCollector(string expected, TaskCompletionSource<string> seen)
    {
        Receive<ConsoleOutput>(o =>
        {
            _text.Append(Encoding.UTF8.GetString(o.Data));
            if (_text.ToString().Contains(expected, StringComparison.Ordinal))
                seen.TrySetResult(_text.ToString());
        });
        Receive<CommandRejected>(r => seen.TrySetException(new InvalidOperationException(r.Reason)));
    }

    public static Props Props(string expected, TaskCompletionSource<string> seen) =>
        Akka.Actor.Props.Create(() => new ConsoleCollector(expected, seen));
}
