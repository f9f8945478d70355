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

    public ConsoleCollector(Text text)
    {
        Receive<ConsoleOutput>(o => text.Append(Encoding.UTF8.GetString(o.Data)));
        Receive<ConsoleEnded>(e => text.Append($"\n[ended: {e.Reason}]\n"));
        Receive<CommandRejected>(r => text.Append($"\n[rejected: {r.Reason}]\n"));
    }

    public static Props Props(string expected, TaskCompletionSource<string> seen) =>
        Akka.Actor.Props.Create(() => new ConsoleCollector(expected, seen));

    public static Props Props(Text text) => Akka.Actor.Props.Create(() => new ConsoleCollector(text));

    /// <summary>Everything received so far, shared with the test, with waits for a condition on it.</summary>
    public sealed class Text
    {
        private readonly StringBuilder _text = new();

        public string Current
        {
            get
            {
                lock (_text)
                    return _text.ToString();
            }
        }

        public void Append(string s)
        {
            lock (_text)
                _text.Append(s);
        }

        public async Task<string> WaitAsync(Func<string, bool> condition)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                string now = Current;
                if (condition(now))
                    return now;
                Assert.True(DateTime.UtcNow < deadline, $"the console never showed what was expected; it has:\n{now}");
                await Task.Delay(50);
            }
        }
    }
}
