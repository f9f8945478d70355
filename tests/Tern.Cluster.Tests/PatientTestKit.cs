// The actor tests' TestKit settings: ExpectMsg without a timeout waits Akka's default of 3 s,
// which a guest boot (JIT of the machine and the serializer included) can exceed when the whole
// suite shares two loaded cores. A longer default costs nothing when the message comes; the
// ExpectNoMsg calls here all name their own (short) duration, so none waits longer.
using Akka.Configuration;

namespace Tern.Cluster.Tests;

internal static class PatientTestKit
{
    public static Config With(Config config) =>
        ConfigurationFactory.ParseString("akka.test.single-expect-default = 20s").WithFallback(config);
}
