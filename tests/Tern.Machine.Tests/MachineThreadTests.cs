// A guest on its own thread, controlled from another: console output arrives as written,
// pause/resume/stop and requests take effect between quanta, and power-off completes it.
using System.Text;
using Tern.Tests.Shared;

namespace Tern.Machine.Tests;

public class MachineThreadTests
{
    private const ulong Ram = 0x8000_0000;

    // Prints "hi\n", then counts forever in x7 (so a pause has something to stop).
    private static byte[] Counter() => ElfBuilder.Build(Ram, ElfBuilder.Words(
        Enc.Lui(5, 0x10000),
        Enc.Addi(6, 0, 'h'), Enc.Sb(5, 6, 0), Enc.Addi(6, 0, 'i'), Enc.Sb(5, 6, 0), Enc.Addi(6, 0, '\n'), Enc.Sb(5, 6, 0),
        Enc.Addi(7, 7, 1), Enc.Jal(0, -4)), Ram);

    private static MachineThread Start(byte[] kernel, StringBuilder console)
    {
        var thread = new MachineThread(stream =>
        {
            var m = new VirtMachine(new MachineOptions { MemoryBytes = 16 << 20, Console = stream });
            m.Boot(new BootImages { Kernel = kernel });
            return m;
        }, "test");
        thread.ConsoleOutput += bytes =>
        {
            lock (console)
                console.Append(Encoding.ASCII.GetString(bytes.Span));
        };
        thread.Start();
        return thread;
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        for (int i = 0; i < 400 && !condition(); i++)
            await Task.Delay(25);
        Assert.True(condition(), what);
    }

    [Fact]
    public async Task A_throttled_guest_keeps_running_and_serving_requests_and_a_bad_throttle_is_refused()
    {
        var console = new StringBuilder();
        using var thread = Start(Counter(), console);
        await Eventually(() => { lock (console) return console.ToString() == "hi\n"; }, "console output never arrived");
        Assert.Throws<ArgumentOutOfRangeException>(() => thread.ThrottlePercent = 100);
        Assert.Throws<ArgumentOutOfRangeException>(() => thread.ThrottlePercent = -1);
        Assert.Equal(0, thread.ThrottlePercent);

        thread.ThrottlePercent = 99;
        Assert.Equal(99, thread.ThrottlePercent);
        // At 99% the guest runs 2 ms slices with about 0.2 s of sleep between them: it still
        // moves, and requests (a migration's harvest) are served during the sleep.
        ulong a = await thread.InvokeAsync(m => m.Hart.GetX(7)).WaitAsync(TimeSpan.FromSeconds(5));
        await Eventually(() => thread.InvokeAsync(m => m.Hart.GetX(7)).Result > a, "the throttled guest never ran");
        await thread.PauseAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(MachineRunState.Paused, thread.State);
        thread.ThrottlePercent = 0;
        thread.Resume();
        ulong b = await thread.InvokeAsync(m => m.Hart.GetX(7));
        await Eventually(() => thread.InvokeAsync(m => m.Hart.GetX(7)).Result > b, "the guest did not continue unthrottled");
    }

    [Fact]
    public async Task A_thread_started_paused_runs_nothing_until_resumed()
    {
        var console = new StringBuilder();
        var thread = new MachineThread(stream =>
        {
            var m = new VirtMachine(new MachineOptions { MemoryBytes = 16 << 20, Console = stream });
            m.Boot(new BootImages { Kernel = Counter() });
            return m;
        }, "test");
        using (thread)
        {
            thread.ConsoleOutput += bytes =>
            {
                lock (console)
                    console.Append(Encoding.ASCII.GetString(bytes.Span));
            };
            thread.StartPaused();
            Assert.Equal(MachineRunState.Paused, thread.State);
            Assert.Throws<InvalidOperationException>(thread.Start);
            await Task.Delay(100);
            Assert.Equal(0UL, await thread.InvokeAsync(m => m.InstructionsRetired));
            thread.Resume();
            await Eventually(() => { lock (console) return console.ToString() == "hi\n"; }, "the guest did not start on resume");
        }
    }

    [Fact]
    public async Task A_resume_gate_runs_on_the_guests_thread_before_it_executes_and_decides_whether_it_resumes()
    {
        var console = new StringBuilder();
        using var thread = new MachineThread(stream =>
        {
            var m = new VirtMachine(new MachineOptions { MemoryBytes = 16 << 20, Console = stream });
            m.Boot(new BootImages { Kernel = Counter() });
            return m;
        }, "gated");
        thread.StartPaused();

        // A gate that says no (or fails) leaves the guest paused, having run nothing.
        Assert.False(await thread.ResumeWhen(_ => false));
        await Assert.ThrowsAsync<TimeoutException>(() => thread.ResumeWhen(_ => throw new TimeoutException("no go")));
        await Task.Delay(100);
        Assert.Equal(MachineRunState.Paused, thread.State);
        Assert.Equal(0UL, await thread.InvokeAsync(m => m.InstructionsRetired));

        // A gate may block (as a migration target waiting for go); it runs on the guest's own thread,
        // and the guest executes only after it said yes.
        using var go = new ManualResetEventSlim();
        string? gateThread = null;
        ulong retiredInGate = ulong.MaxValue;
        var gated = thread.ResumeWhen(m =>
        {
            gateThread = Thread.CurrentThread.Name;
            go.Wait(TimeSpan.FromSeconds(30));
            retiredInGate = m.InstructionsRetired;
            return true;
        });
        await Task.Delay(100);
        Assert.False(gated.IsCompleted);
        go.Set();
        Assert.True(await gated);
        Assert.Equal(("vcpu:gated", 0UL), (gateThread, retiredInGate));
        await Eventually(() => thread.InvokeAsync(m => m.Hart.GetX(7)).Result > 0, "the guest did not run after the gate said yes");
        Assert.Equal(MachineRunState.Running, thread.State);
    }

    [Fact]
    public async Task Pause_resume_invoke_and_stop_take_effect_between_quanta()
    {
        var console = new StringBuilder();
        using var thread = Start(Counter(), console);
        await Eventually(() => { lock (console) return console.ToString() == "hi\n"; }, "console output never arrived");

        await thread.PauseAsync();
        Assert.Equal(MachineRunState.Paused, thread.State);
        ulong a = await thread.InvokeAsync(m => m.Hart.GetX(7));
        await Task.Delay(100);
        ulong b = await thread.InvokeAsync(m => m.Hart.GetX(7));
        Assert.Equal(a, b); // paused: the counter does not move

        thread.Resume();
        await Eventually(() => thread.InvokeAsync(m => m.Hart.GetX(7)).Result > b, "the guest did not continue after resume");
        Assert.Equal(MachineRunState.Running, thread.State);

        var state = await thread.InvokeAsync(m => m.CaptureState());
        Assert.Single(state.Harts);

        Assert.Equal(ExitReason.Quit, await thread.StopAsync());
        Assert.Equal(MachineRunState.Stopped, thread.State);
        await Assert.ThrowsAsync<InvalidOperationException>(() => thread.InvokeAsync(m => 0));
    }

    [Fact]
    public async Task Guest_power_off_completes_the_thread_with_its_code()
    {
        var kernel = ElfBuilder.Build(Ram, ElfBuilder.Words(
            Enc.Lui(5, 0x100), Enc.Lui(6, 0x2A3), Enc.Addi(6, 6, 0x333), Enc.Sw(5, 6, 0), Enc.Jal(0, 0)), Ram);
        using var thread = Start(kernel, new StringBuilder());
        Assert.Equal(ExitReason.PowerOff, await thread.Completion.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(42, thread.ExitCode);
        Assert.Equal(MachineRunState.Stopped, thread.State);
    }
}
