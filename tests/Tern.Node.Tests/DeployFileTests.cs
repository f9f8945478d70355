// deploy/ and k8s/ checked against the node itself, since no Docker engine or Kubernetes runs
// here: the Dockerfile builds the real projects and runs `tern node start`; every environment
// variable the files set is one the node reads (NodeConfiguration's table), the required ones are
// set, and the result loads as valid settings; ports, seeds, service names, images and Jaeger's
// ports agree; and every health path the probes use is served by a real node.
using System.Collections;
using System.Net;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Npgsql;
using Tern.Cluster;
using static Tern.Node.Tests.DeployFiles;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed partial class DeployFileTests : IDisposable
{
    private const string NodeImage = "tern/node:0.1.0";
    private static readonly int[] JaegerPorts = [4317, 4318, 16686];
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-deploy-").FullName;

    // ---------- Dockerfile ----------

    [Fact]
    public void The_dockerfile_builds_the_cli_project_and_its_entrypoint_runs_tern_node_start()
    {
        var ins = Dockerfile(PathOf("deploy", "Dockerfile"));
        var froms = ins.Where(i => i.Keyword == "FROM").ToList();
        Assert.True(froms.Count >= 2, "the Dockerfile is not multi-stage");
        Assert.All(froms, f => Assert.Matches(PinnedImage(), f.Text.Split(' ')[0]));
        string buildStage = froms[0].Stage ?? throw new Xunit.Sdk.XunitException("the first stage has no name");
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:", froms[0].Text, StringComparison.Ordinal);
        var final = froms[^1];
        Assert.StartsWith("mcr.microsoft.com/dotnet/aspnet:", final.Text, StringComparison.Ordinal); // the node serves HTTP through ASP.NET Core
        var finalStage = ins.Where(i => i.Stage == final.Stage && i.Keyword != "FROM").ToList();

        // Every local COPY source exists in the repository.
        foreach (var copy in ins.Where(i => i.Keyword == "COPY" && !i.Text.StartsWith("--from", StringComparison.Ordinal)))
        {
            var parts = copy.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.All(parts[..^1], source => Assert.True(Path.Exists(PathOf(source.TrimEnd('/'))), $"COPY {source}: not in the repository"));
        }

        // The restore step sees every project the CLI depends on.
        string cli = "src/Tern.Cli/Tern.Cli.csproj";
        int restore = ins.FindIndex(i => i.Keyword == "RUN" && i.Text.Contains("dotnet restore", StringComparison.Ordinal));
        Assert.True(restore > 0, "no dotnet restore step");
        var copiedBeforeRestore = ins.Take(restore).Where(i => i.Keyword == "COPY").SelectMany(i => i.Text.Split(' ')[..^1]).ToHashSet();
        foreach (var project in ProjectClosure(cli))
            Assert.Contains(project, copiedBeforeRestore);
        Assert.Contains("Directory.Packages.props", copiedBeforeRestore);

        // Publish the CLI, copy its output into the runtime stage, run `tern node start` from there.
        var publish = PublishCommand().Match(ins.Single(i => i.Keyword == "RUN" && i.Text.Contains("dotnet publish", StringComparison.Ordinal)).Text);
        Assert.True(publish.Success);
        Assert.Equal(cli, publish.Groups["project"].Value);
        string output = publish.Groups["out"].Value;
        string workdir = finalStage.Last(i => i.Keyword == "WORKDIR").Text;
        var copyFrom = finalStage.Single(i => i.Keyword == "COPY" && i.Text.StartsWith($"--from={buildStage} ", StringComparison.Ordinal)).Text.Split(' ');
        Assert.Equal(output, copyFrom[1].TrimEnd('/'));
        string appDir = copyFrom[2] is "./" or "." ? workdir : copyFrom[2].TrimEnd('/');
        string assembly = XDocument.Load(PathOf(cli)).Descendants("AssemblyName").Single().Value;
        Assert.Equal(["dotnet", $"{appDir}/{assembly}.dll", "node", "start"], finalStage.Single(i => i.Keyword == "ENTRYPOINT").Exec!);

        // A non-root user, the node's settings, the ports it listens on, a liveness HEALTHCHECK through tern.
        string user = finalStage.Last(i => i.Keyword == "USER").Text;
        Assert.DoesNotContain(user.Split(':')[0], new[] { "root", "0" });
        var env = finalStage.Where(i => i.Keyword == "ENV").SelectMany(i => i.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(kv => kv.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        AssertKnownVariables(env.Keys, "deploy/Dockerfile ENV");
        var settings = NodeConfiguration.Load(new Dictionary<string, string>(), new Hashtable(env), _dir);
        Assert.Equal(("0.0.0.0", "0.0.0.0"), (settings.Cluster.Hostname, settings.HttpHost));
        var exposed = finalStage.Where(i => i.Keyword == "EXPOSE").SelectMany(i => i.Text.Split(' ')).Select(int.Parse).Order().ToArray();
        Assert.Equal(new[] { settings.Cluster.Port, settings.HttpPort }.Order().ToArray(), exposed);
        var health = finalStage.Single(i => i.Keyword == "HEALTHCHECK").Text;
        var cmd = JsonArray().Match(health);
        Assert.True(cmd.Success && health.Contains(" CMD [", StringComparison.Ordinal), "HEALTHCHECK is not an exec-form CMD");
        string[] probe = System.Text.Json.JsonSerializer.Deserialize<string[]>(cmd.Value)!;
        Assert.Equal(["dotnet", $"{appDir}/{assembly}.dll", "node", "probe", "--path", NodeHealth.LivePath], probe);

        // The build context filter keeps what the build needs (the embedded guest binaries among them).
        var ignore = File.ReadAllLines(PathOf("deploy", "Dockerfile.dockerignore"));
        foreach (var project in ProjectClosure(cli))
        {
            Assert.False(Ignored(ignore, project), $"{project} is excluded from the build context");
            string projectDir = Path.GetDirectoryName(project)!.Replace('\\', '/');
            foreach (var resource in XDocument.Load(PathOf(project)).Descendants("EmbeddedResource").Select(e => e.Attribute("Include")!.Value))
            {
                string full = Path.GetFullPath(Path.Combine(PathOf(projectDir), resource.Replace('\\', '/')));
                var files = Path.GetFileName(full).Contains('*', StringComparison.Ordinal)
                    ? Directory.GetFiles(Path.GetDirectoryName(full)!, Path.GetFileName(full))
                    : File.Exists(full) ? [full] : [];
                Assert.True(files.Length > 0, $"{resource} (embedded by {project}) is missing");
                foreach (var file in files)
                {
                    string relative = Path.GetRelativePath(RepoRoot, file).Replace('\\', '/');
                    Assert.False(Ignored(ignore, relative), $"{relative} (embedded by {project}) is excluded from the build context");
                }
            }
        }
        Assert.True(Ignored(ignore, "src/Tern.Cli/bin/Release/net10.0/tern.dll"));
    }

    // The CLI project and every project it references, as repository-relative paths.
    private static SortedSet<string> ProjectClosure(string project)
    {
        var seen = new SortedSet<string>(StringComparer.Ordinal);
        var todo = new Stack<string>([project]);
        while (todo.TryPop(out var p))
        {
            if (!seen.Add(p))
                continue;
            foreach (var reference in XDocument.Load(PathOf(p)).Descendants("ProjectReference").Select(e => e.Attribute("Include")!.Value))
            {
                string full = Path.GetFullPath(Path.Combine(PathOf(Path.GetDirectoryName(p)!), reference.Replace('\\', '/')));
                todo.Push(Path.GetRelativePath(RepoRoot, full).Replace('\\', '/'));
            }
        }
        return seen;
    }

    // ---------- docker-compose ----------

    [Fact]
    public void The_compose_file_runs_three_nodes_on_postgres_traced_into_jaeger()
    {
        var compose = Yaml(PathOf("deploy", "docker-compose.yml")).Single();
        var services = compose.Map("services");
        var nodes = services.Where(s => Map(s.Value, s.Key).ContainsKey("build")).ToDictionary(s => s.Key, s => Map(s.Value, s.Key));
        Assert.Equal(3, nodes.Count);
        var names = new HashSet<string>();
        foreach (var (service, node) in nodes)
        {
            var build = node.Map("build");
            Assert.Equal(RepoRoot.TrimEnd('/'), Path.GetFullPath(Path.Combine(PathOf("deploy"), build.Str("context"))).TrimEnd('/'));
            Assert.Equal("deploy/Dockerfile", build.Str("dockerfile"));
            Assert.Equal(NodeImage, node.Str("image"));

            var env = node.Map("environment").ToDictionary(p => p.Key, p => (string)p.Value!);
            var settings = LoadDeployed(env, $"compose service {service}");
            Assert.True(names.Add(settings.Cluster.NodeName), $"node name {settings.Cluster.NodeName} twice");
            Assert.Equal(service, settings.Cluster.PublicHostname);
            Assert.Equal(service, node.Str("hostname"));
            Assert.Contains(node.List("ports").Cast<string>(), p => p.EndsWith($":{settings.HttpPort}", StringComparison.Ordinal));
            foreach (var seed in settings.Cluster.Seeds)
            {
                var (host, port) = HostPort(seed);
                Assert.True(nodes.ContainsKey(host), $"{service}: seed {seed} names no node service");
                Assert.Equal(LoadDeployed(nodes[host].Map("environment").ToDictionary(p => p.Key, p => (string)p.Value!), host).Cluster.Port, port);
            }

            // The database: a service with a health check that the node waits for, with the same credentials.
            var pg = new NpgsqlConnectionStringBuilder(settings.Cluster.JournalConnectionString);
            var postgres = services.Map(pg.Host!);
            Assert.StartsWith("postgres:", postgres.Str("image"), StringComparison.Ordinal);
            Assert.Equal(5432, pg.Port);
            Assert.True(postgres.ContainsKey("healthcheck"));
            Assert.Equal("service_healthy", node.Map("depends_on").Map(pg.Host!).Str("condition"));
            var pgEnv = postgres.Map("environment");
            Assert.Equal((pg.Database, pg.Username, pg.Password), (pgEnv.Str("POSTGRES_DB"), pgEnv.Str("POSTGRES_USER"), pgEnv.Str("POSTGRES_PASSWORD")));

            // Traces go to the Jaeger service's OTLP gRPC port.
            var otlp = new Uri(env["OTEL_EXPORTER_OTLP_ENDPOINT"]);
            Assert.StartsWith("jaegertracing/jaeger:2.", services.Map(otlp.Host).Str("image"), StringComparison.Ordinal);
            Assert.Equal(4317, otlp.Port);

            var test = node.Map("healthcheck").List("test").Cast<string>().ToArray();
            Assert.Equal(["CMD", "dotnet", "/app/tern.dll", "node", "probe", "--path"], test[..^1]);
            Assert.Contains(test[^1], ServedPaths);
        }
        Assert.Equal(3, nodes.Values.SelectMany(n => LoadDeployed(n.Map("environment").ToDictionary(p => p.Key, p => (string)p.Value!), "").Cluster.Seeds).Distinct().Count());

        foreach (var (service, value) in services.Where(s => !nodes.ContainsKey(s.Key)))
            Assert.Matches(PinnedImage(), Map(value, service).Str("image"));
        var jaeger = services.Map("jaeger");
        var published = jaeger.List("ports").Cast<string>().Select(p => p.Split(':')).ToList();
        Assert.All(JaegerPorts, port => Assert.Contains(published, p => p[1] == port.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    // ---------- Kubernetes ----------

    private sealed record K8sDoc(string File, string Kind, string Name, string? Namespace, Dictionary<string, object?> Body);

    private static List<K8sDoc> K8sDocs()
    {
        var docs = new List<K8sDoc>();
        foreach (var file in Directory.GetFiles(PathOf("k8s"), "*.yaml").Where(f => Path.GetFileName(f) != "kustomization.yaml").Order())
        {
            foreach (var doc in Yaml(file))
            {
                var meta = doc.Map("metadata");
                docs.Add(new K8sDoc(Path.GetFileName(file), doc.Str("kind"), meta.Str("name"), meta.GetValueOrDefault("namespace") as string, doc));
            }
        }
        return docs;
    }

    [Fact]
    public void The_kubernetes_manifests_run_a_statefulset_whose_seeds_are_its_own_pods()
    {
        var docs = K8sDocs();
        var kustomization = Yaml(PathOf("k8s", "kustomization.yaml")).Single();
        Assert.Equal(docs.Select(d => d.File).Distinct().Order(), kustomization.List("resources").Cast<string>().Order());
        string ns = docs.Single(d => d.Kind == "Namespace").Name;
        Assert.All(docs.Where(d => d.Kind != "Namespace"), d => Assert.Equal(ns, d.Namespace));
        K8sDoc One(string kind, string name) => docs.SingleOrDefault(d => d.Kind == kind && d.Name == name) ?? throw new Xunit.Sdk.XunitException($"no {kind} {name}");

        var sts = docs.Single(d => d.Kind == "StatefulSet");
        var spec = sts.Body.Map("spec");
        int replicas = int.Parse(spec.Str("replicas"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(replicas >= 3);
        var podTemplate = spec.Map("template");
        var podLabels = podTemplate.Map("metadata").Map("labels");
        var pod = podTemplate.Map("spec");
        Assert.True(int.Parse(pod.Str("terminationGracePeriodSeconds"), System.Globalization.CultureInfo.InvariantCulture) >= 35, "too short a grace period for a graceful leave");
        Assert.Equal("true", pod.Map("securityContext").Str("runAsNonRoot"));

        // The headless Service that names the pods, published before they are ready so seeds resolve.
        var headless = One("Service", spec.Str("serviceName")).Body.Map("spec");
        Assert.Equal("None", headless.Str("clusterIP"));
        Assert.Equal("true", headless.Str("publishNotReadyAddresses"));
        Assert.True(Selects(headless.Map("selector"), podLabels));

        var container = Map(Assert.Single(pod.List("containers")), "container");
        Assert.Equal(NodeImage, container.Str("image"));
        var containerPorts = container.List("ports").Select(p => Map(p, "port")).ToDictionary(p => p.Str("name"), p => int.Parse(p.Str("containerPort"), System.Globalization.CultureInfo.InvariantCulture));
        int Resolve(string port) => int.TryParse(port, out int n) ? n : containerPorts[port];

        string SeedName(int ordinal) => $"{sts.Name}-{ordinal}.{spec.Str("serviceName")}.{ns}.svc.cluster.local";
        NodeSettings? first = null;
        for (int i = 0; i < replicas; i++)
        {
            var settings = LoadDeployed(PodEnvironment(docs, container, $"{sts.Name}-{i}"), $"pod {sts.Name}-{i}");
            first ??= settings;
            Assert.Equal($"{sts.Name}-{i}", settings.Cluster.NodeName);
            Assert.Equal(SeedName(i), settings.Cluster.PublicHostname);
            Assert.Equal((settings.Cluster.Port, settings.HttpPort), (containerPorts["remoting"], containerPorts["http"]));
        }
        Assert.NotNull(first);
        Assert.Equal(Enumerable.Range(0, replicas).Select(i => $"{SeedName(i)}:{first.Cluster.Port}"), first.Cluster.Seeds);
        Assert.Contains(headless.List("ports").Select(p => Map(p, "port")), p => Resolve(p.Str("targetPort")) == first.Cluster.Port);

        // Probes on the health paths, at the API port; a Service for the API.
        foreach (var (probe, path) in new[] { ("livenessProbe", NodeHealth.LivePath), ("readinessProbe", NodeHealth.ReadyPath) })
        {
            var get = container.Map(probe).Map("httpGet");
            Assert.Equal(path, get.Str("path"));
            Assert.Equal(first.HttpPort, Resolve(get.Str("port")));
        }
        Assert.Contains(docs.Where(d => d.Kind == "Service" && d.Body.Map("spec").GetValueOrDefault("clusterIP") is not "None"),
            s => Selects(s.Body.Map("spec").Map("selector"), podLabels) && s.Body.Map("spec").List("ports").Any(p => Resolve(Map(p, "port").Str("targetPort")) == first.HttpPort));

        // The disruption budget keeps a majority for keep-majority split-brain resolution.
        var pdb = docs.Single(d => d.Kind == "PodDisruptionBudget").Body.Map("spec");
        Assert.True(Selects(pdb.Map("selector").Map("matchLabels"), podLabels));
        Assert.True(int.Parse(pdb.Str("maxUnavailable"), System.Globalization.CultureInfo.InvariantCulture) <= (replicas - 1) / 2);

        // PostgreSQL: the connection string names its Service, port and credentials.
        var pg = new NpgsqlConnectionStringBuilder(first.Cluster.JournalConnectionString);
        var pgService = One("Service", ServiceName(pg.Host!, ns)).Body.Map("spec");
        Assert.Contains(pgService.List("ports"), p => Map(p, "port").Str("port") == pg.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var pgDeployment = docs.Single(d => d.Kind == "Deployment" && Selects(pgService.Map("selector"), d.Body.Map("spec").Map("template").Map("metadata").Map("labels")));
        var pgContainer = Map(Assert.Single(pgDeployment.Body.Map("spec").Map("template").Map("spec").List("containers")), "postgres container");
        Assert.StartsWith("postgres:", pgContainer.Str("image"), StringComparison.Ordinal);
        var pgEnv = PodEnvironment(docs, pgContainer, pgDeployment.Name);
        Assert.Equal((pg.Database, pg.Username, pg.Password), (pgEnv["POSTGRES_DB"], pgEnv["POSTGRES_USER"], pgEnv["POSTGRES_PASSWORD"]));

        // Jaeger: the OTLP endpoint names its Service; OTLP on 4317/4318 and the UI on 16686.
        var otlp = new Uri(PodEnvironment(docs, container, $"{sts.Name}-0")["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var jaegerService = One("Service", ServiceName(otlp.Host, ns)).Body.Map("spec");
        var jaegerPorts = jaegerService.List("ports").Select(p => int.Parse(Map(p, "port").Str("port"), System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(JaegerPorts, jaegerPorts.Order());
        Assert.Contains(otlp.Port, jaegerPorts);
        var jaeger = docs.Single(d => d.Kind == "Deployment" && Selects(jaegerService.Map("selector"), d.Body.Map("spec").Map("template").Map("metadata").Map("labels")));
        var jaegerContainer = Map(Assert.Single(jaeger.Body.Map("spec").Map("template").Map("spec").List("containers")), "jaeger container");
        Assert.StartsWith("jaegertracing/jaeger:2.", jaegerContainer.Str("image"), StringComparison.Ordinal);
        Assert.Equal(JaegerPorts, jaegerContainer.List("ports").Select(p => int.Parse(Map(p, "port").Str("containerPort"), System.Globalization.CultureInfo.InvariantCulture)).Order());

        // Every image is the one deploy/Dockerfile builds or a pinned public image.
        foreach (var c in docs.Where(d => d.Kind is "Deployment" or "StatefulSet").SelectMany(d => d.Body.Map("spec").Map("template").Map("spec").List("containers")))
        {
            string image = Map(c, "container").Str("image");
            Assert.True(image == NodeImage || PinnedImage().IsMatch(image), $"{image} is neither built here nor pinned");
        }
    }

    // The environment a container sees: envFrom ConfigMaps and Secrets, then env entries with $(VAR) expanded.
    private static Dictionary<string, string> PodEnvironment(List<K8sDoc> docs, Dictionary<string, object?> container, string podName)
    {
        var env = new Dictionary<string, string>();
        foreach (var from in container.GetValueOrDefault("envFrom") is List<object?> list ? list : [])
        {
            var source = Map(from, "envFrom");
            if (source.GetValueOrDefault("configMapRef") is Dictionary<string, object?> cm)
                AddAll(env, docs.Single(d => d.Kind == "ConfigMap" && d.Name == cm.Str("name")).Body.Map("data"));
            if (source.GetValueOrDefault("secretRef") is Dictionary<string, object?> sr)
                AddAll(env, docs.Single(d => d.Kind == "Secret" && d.Name == sr.Str("name")).Body.Map("stringData"));
        }
        foreach (var item in container.GetValueOrDefault("env") is List<object?> entries ? entries : [])
        {
            var e = Map(item, "env");
            string name = e.Str("name");
            if (e.GetValueOrDefault("value") is string value)
            {
                env[name] = VarReference().Replace(value, m => env.TryGetValue(m.Groups[1].Value, out var v) ? v
                    : throw new Xunit.Sdk.XunitException($"{name} refers to $({m.Groups[1].Value}), which is not set before it"));
                continue;
            }
            var valueFrom = e.Map("valueFrom");
            if (valueFrom.GetValueOrDefault("fieldRef") is Dictionary<string, object?> field)
            {
                Assert.Equal("metadata.name", field.Str("fieldPath"));
                env[name] = podName;
            }
            else if (valueFrom.GetValueOrDefault("secretKeyRef") is Dictionary<string, object?> key)
            {
                env[name] = docs.Single(d => d.Kind == "Secret" && d.Name == key.Str("name")).Body.Map("stringData").Str(key.Str("key"));
            }
            else
            {
                throw new Xunit.Sdk.XunitException($"{name}: unsupported valueFrom");
            }
        }
        return env;
    }

    private static void AddAll(Dictionary<string, string> env, Dictionary<string, object?> data)
    {
        foreach (var (k, v) in data)
            env[k] = (string)v!;
    }

    private static bool Selects(Dictionary<string, object?> selector, Dictionary<string, object?> labels) =>
        selector.Count > 0 && selector.All(p => labels.TryGetValue(p.Key, out var v) && Equals(v, p.Value));

    // name, name.ns, name.ns.svc, name.ns.svc.cluster.local -> name (in namespace ns).
    private static string ServiceName(string host, string ns)
    {
        var parts = host.Split('.');
        Assert.True(parts.Length == 1 || parts[1] == ns, $"{host} is not in namespace {ns}");
        Assert.True(parts.Length <= 2 || string.Join('.', parts[2..]) is "svc" or "svc.cluster.local", $"{host} is not a Service name");
        return parts[0];
    }

    // ---------- shared checks ----------

    private static void AssertKnownVariables(IEnumerable<string> names, string where)
    {
        var known = NodeConfiguration.Settings.Concat(NodeConfiguration.EnvironmentOnly).Append(NodeConfiguration.ConfigFile).Select(s => s.Environment).ToHashSet();
        foreach (var name in names)
            Assert.True(known.Contains(name), $"{where} sets {name}, which the node does not read");
    }

    // A deployed node's environment: only names the node reads, every required one, and valid values.
    private NodeSettings LoadDeployed(Dictionary<string, string> env, string where)
    {
        AssertKnownVariables(env.Keys, where);
        foreach (var required in NodeConfiguration.Settings.Concat(NodeConfiguration.EnvironmentOnly).Where(s => s.RequiredInDeployment))
            Assert.True(env.ContainsKey(required.Environment), $"{where} does not set {required.Environment}");
        var settings = NodeConfiguration.Load(new Dictionary<string, string>(), new Hashtable(env), _dir);
        Assert.Equal(PersistenceKind.Postgres, settings.Cluster.Persistence);
        Assert.Equal(("0.0.0.0", "0.0.0.0"), (settings.Cluster.Hostname, settings.HttpHost));
        Assert.NotNull(settings.ApiToken);
        return settings;
    }

    private static (string Host, int Port) HostPort(string seed)
    {
        int colon = seed.LastIndexOf(':');
        return (seed[..colon], int.Parse(seed[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static readonly string[] ServedPaths = [NodeHealth.LivePath, NodeHealth.ReadyPath];

    // ---------- the paths the probes use, asked of a real node ----------

    [Fact]
    public async Task Every_probe_path_in_deploy_and_k8s_is_served_by_a_real_node()
    {
        var paths = new HashSet<string>();
        var docker = Dockerfile(PathOf("deploy", "Dockerfile")).Single(i => i.Keyword == "HEALTHCHECK").Text;
        paths.Add(System.Text.Json.JsonSerializer.Deserialize<string[]>(JsonArray().Match(docker).Value)![^1]);
        foreach (var (_, service) in Yaml(PathOf("deploy", "docker-compose.yml")).Single().Map("services"))
        {
            if (Map(service, "service").GetValueOrDefault("healthcheck") is Dictionary<string, object?> hc && hc.List("test").Cast<string>().Contains("probe"))
                paths.Add(hc.List("test").Cast<string>().Last());
        }
        foreach (var doc in K8sDocs().Where(d => d.Kind == "StatefulSet"))
        {
            foreach (var c in doc.Body.Map("spec").Map("template").Map("spec").List("containers"))
            {
                foreach (var probe in new[] { "livenessProbe", "readinessProbe", "startupProbe" })
                {
                    if (Map(c, "container").GetValueOrDefault(probe) is Dictionary<string, object?> p)
                        paths.Add(p.Map("httpGet").Str("path"));
                }
            }
        }
        Assert.Equal(ServedPaths.Order(), paths.Order());

        await using var app = NodeHost.Build(new NodeSettings
        {
            Cluster = new TernNodeOptions { NodeName = "probe", Port = 0, DataDir = Path.Combine(_dir, "node"), MemoryBudgetBytes = 256UL << 20, FastTimings = true },
            HttpPort = 0,
        }, logging => logging.ClearProviders());
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(NodeHost.HttpAddress(app)) };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(NodeHealth.LivePath)).StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        HttpResponseMessage ready;
        while ((ready = await http.GetAsync(NodeHealth.ReadyPath)).StatusCode != HttpStatusCode.OK)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.True(DateTime.UtcNow < deadline, "the node never became ready: " + await ready.Content.ReadAsStringAsync());
            await Task.Delay(200);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/health/nonexistent")).StatusCode);
        await app.StopAsync();
    }

    [GeneratedRegex(@"^[a-z0-9./-]+:[0-9]+(\.[0-9]+)+(-[a-z0-9.]+)?(@sha256:[0-9a-f]{64})?$")]
    private static partial Regex PinnedImage();

    [GeneratedRegex(@"dotnet publish (?<project>\S+\.csproj)\b.*\s-o\s+(?<out>\S+)")]
    private static partial Regex PublishCommand();

    [GeneratedRegex(@"\[.*\]")]
    private static partial Regex JsonArray();

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex VarReference();

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // a stopped node may hold its journal for a moment; it is a temp dir
        }
    }
}
