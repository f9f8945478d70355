// A console stream that passes output through and calls back once when a given text has
// appeared in it (matching across writes), so a run can end at a milestone of the guest's
// own output: "stop when Linux prints its first heartbeat".
using System.Text;

namespace Tern.Machine;

/// <summary>Passes console output through and fires once when <paramref name="text"/> appears.</summary>
public sealed class OutputWatchStream(Stream inner, string text, Action matched) : WriteOnlyStream
{
    private readonly byte[] _pattern = Encoding.UTF8.GetBytes(text);
    private int _matched;
    private bool _fired;

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        foreach (byte b in buffer)
            Feed(b);
    }

    /// <inheritdoc/>
    public override void WriteByte(byte value)
    {
        inner.WriteByte(value);
        Feed(value);
    }

    // Simple restart matching is enough for console milestones (patterns without self-overlap).
    private void Feed(byte b)
    {
        if (_fired || _pattern.Length == 0)
            return;
        _matched = b == _pattern[_matched] ? _matched + 1 : (b == _pattern[0] ? 1 : 0);
        if (_matched == _pattern.Length)
        {
            _fired = true;
            matched();
        }
    }

    /// <inheritdoc/>
    public override void Flush() => inner.Flush();
}
