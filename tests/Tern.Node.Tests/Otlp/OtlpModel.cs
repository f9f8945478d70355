// What the test receiver keeps of OTLP exports: spans, metric data points and log records,
// each with the attributes of the resource (the node) that sent it. Decoded from the messages
// of opentelemetry-proto (collector/{trace,metrics,logs}/v1), field numbers from its .proto files.
namespace Tern.Node.Tests.Otlp;

internal sealed record OtlpSpan(
    IReadOnlyDictionary<string, object> Resource, string Scope, string TraceId, string SpanId, string ParentSpanId,
    string Name, int Kind, IReadOnlyDictionary<string, object> Attributes)
{
    public string Node => (string)Resource["service.instance.id"];
}

internal sealed record OtlpPoint(IReadOnlyDictionary<string, object> Resource, string Metric, string Unit, IReadOnlyDictionary<string, object> Attributes, double Value)
{
    public string Node => (string)Resource["service.instance.id"];
}

internal sealed record OtlpLog(IReadOnlyDictionary<string, object> Resource, string Body, string TraceId, string SpanId, IReadOnlyDictionary<string, object> Attributes)
{
    public string Node => (string)Resource["service.instance.id"];
}

internal static class OtlpDecoder
{
    public static List<OtlpSpan> Traces(ReadOnlySpan<byte> request)
    {
        var spans = new List<OtlpSpan>();
        var r = new ProtoReader(request);
        while (r.Next())
        {
            if (r.Field == 1 && r.WireType == 2)
                ResourceSpans(r.ReadBytes(), spans);
            else
                r.Skip();
        }
        return spans;
    }

    public static List<OtlpPoint> Metrics(ReadOnlySpan<byte> request)
    {
        var points = new List<OtlpPoint>();
        var r = new ProtoReader(request);
        while (r.Next())
        {
            if (r.Field == 1 && r.WireType == 2)
                ResourceMetrics(r.ReadBytes(), points);
            else
                r.Skip();
        }
        return points;
    }

    public static List<OtlpLog> Logs(ReadOnlySpan<byte> request)
    {
        var logs = new List<OtlpLog>();
        var r = new ProtoReader(request);
        while (r.Next())
        {
            if (r.Field == 1 && r.WireType == 2)
                ResourceLogs(r.ReadBytes(), logs);
            else
                r.Skip();
        }
        return logs;
    }

    // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
    private static void ResourceSpans(ReadOnlySpan<byte> data, List<OtlpSpan> spans)
    {
        var resource = new Dictionary<string, object>();
        var scopes = new List<byte[]>();
        var r = new ProtoReader(data);
        while (r.Next())
        {
            if (r.Field == 1 && r.WireType == 2)
                Resource(r.ReadBytes(), resource);
            else if (r.Field == 2 && r.WireType == 2)
                scopes.Add(r.ReadBytes().ToArray());
            else
                r.Skip();
        }
        foreach (var scope in scopes)
        {
            // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
            string scopeName = "";
            var s = new ProtoReader(scope);
            var raw = new List<byte[]>();
            while (s.Next())
            {
                if (s.Field == 1 && s.WireType == 2)
                    scopeName = ScopeName(s.ReadBytes());
                else if (s.Field == 2 && s.WireType == 2)
                    raw.Add(s.ReadBytes().ToArray());
                else
                    s.Skip();
            }
            foreach (var span in raw)
                spans.Add(Span(span, resource, scopeName));
        }
    }

    // Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5;
    //        SpanKind kind = 6; repeated KeyValue attributes = 9; ... }
    private static OtlpSpan Span(ReadOnlySpan<byte> data, Dictionary<string, object> resource, string scope)
    {
        string traceId = "", spanId = "", parent = "", name = "";
        int kind = 0;
        var attributes = new Dictionary<string, object>();
        var r = new ProtoReader(data);
        while (r.Next())
        {
            switch (r.Field, r.WireType)
            {
                case (1, 2): traceId = Convert.ToHexStringLower(r.ReadBytes()); break;
                case (2, 2): spanId = Convert.ToHexStringLower(r.ReadBytes()); break;
                case (4, 2): parent = Convert.ToHexStringLower(r.ReadBytes()); break;
                case (5, 2): name = r.ReadString(); break;
                case (6, 0): kind = (int)r.ReadVarint(); break;
                case (9, 2): KeyValue(r.ReadBytes(), attributes); break;
                default: r.Skip(); break;
            }
        }
        return new OtlpSpan(resource, scope, traceId, spanId, parent, name, kind, attributes);
    }

    // ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
    // ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
    private static void ResourceMetrics(ReadOnlySpan<byte> data, List<OtlpPoint> points)
    {
        var resource = new Dictionary<string, object>();
        var scopes = new List<byte[]>();
        var r = new ProtoReader(data);
        while (r.Next())
        {
            if (r.Field == 1 && r.WireType == 2)
                Resource(r.ReadBytes(), resource);
            else if (r.Field == 2 && r.WireType == 2)
                scopes.Add(r.ReadBytes().ToArray());
            else
                r.Skip();
        }
        foreach (var scope in scopes)
        {
            var s = new ProtoReader(scope);
            while (s.Next())
            {
                if (s.Field == 2 && s.WireType == 2)
                    Metric(s.ReadBytes(), resource, points);
                else
                    s.Skip();
            }
        }
    }

    // Metric { string name = 1; string unit = 3; Gauge gauge = 5; Sum sum = 7; ... }
    // Gauge { repeated NumberDataPoint data_points = 1; }  Sum { repeated NumberDataPoint data_points = 1; ... }
    private static void Metric(ReadOnlySpan<byte> data, Dictionary<string, object> resource, List<OtlpPoint> points)
    {
        string name = "", unit = "";
        var bodies = new List<byte[]>();
        var r = new ProtoReader(data);
        while (r.Next())
        {
            switch (r.Field, r.WireType)
            {
                case (1, 2): name = r.ReadString(); break;
                case (3, 2): unit = r.ReadString(); break;
                case (5, 2) or (7, 2): bodies.Add(r.ReadBytes().ToArray()); break;
                default: r.Skip(); break;
            }
        }
        foreach (var body in bodies)
        {
            var b = new ProtoReader(body);
            while (b.Next())
            {
                if (b.Field == 1 && b.WireType == 2)
                    points.Add(Point(b.ReadBytes(), resource, name, unit));
                else
                    b.Skip();
            }
        }
    }

    // NumberDataPoint { repeated KeyValue attributes = 7; double as_double = 4; sfixed64 as_int = 6; ... }
    private static OtlpPoint Point(ReadOnlySpan<byte> data, Dictionary<string, object> resource, string metric, string unit)
    {
        var attributes = new Dictionary<string, object>();
        double value = 0;
        var r = new ProtoReader(data);
        while (r.Next())
        {
            switch (r.Field, r.WireType)
            {
                case (7, 2): KeyValue(r.ReadBytes(), attributes); break;
                case (4, 1): value = BitConverter.UInt64BitsToDouble(r.ReadFixed64()); break;
                case (6, 1): value = (long)r.ReadFixed64(); break;
                default: r.Skip(); break;
            }
        }
        return new OtlpPoint(resource, metric, unit, attributes, value);
    }

    // ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; }
    // ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; }
    private static void ResourceLogs(ReadOnlySpan<byte> data, List<OtlpLog> logs)
    {
        var resource = new Dictionary<string, object>();
        var scopes = new List<byte[]>();
        var r = new ProtoReader(data);
        while (r.Next())
        {
            if (r.Field == 1 && r.WireType == 2)
                Resource(r.ReadBytes(), resource);
            else if (r.Field == 2 && r.WireType == 2)
                scopes.Add(r.ReadBytes().ToArray());
            else
                r.Skip();
        }
        foreach (var scope in scopes)
        {
            var s = new ProtoReader(scope);
            while (s.Next())
            {
                if (s.Field == 2 && s.WireType == 2)
                    logs.Add(Log(s.ReadBytes(), resource));
                else
                    s.Skip();
            }
        }
    }

    // LogRecord { AnyValue body = 5; repeated KeyValue attributes = 6; bytes trace_id = 9; bytes span_id = 10; ... }
    private static OtlpLog Log(ReadOnlySpan<byte> data, Dictionary<string, object> resource)
    {
        string body = "", traceId = "", spanId = "";
        var attributes = new Dictionary<string, object>();
        var r = new ProtoReader(data);
        while (r.Next())
        {
            switch (r.Field, r.WireType)
            {
                case (5, 2): body = AnyValue(r.ReadBytes())?.ToString() ?? ""; break;
                case (6, 2): KeyValue(r.ReadBytes(), attributes); break;
                case (9, 2): traceId = Convert.ToHexStringLower(r.ReadBytes()); break;
                case (10, 2): spanId = Convert.ToHexStringLower(r.ReadBytes()); break;
                default: r.Skip(); break;
            }
        }
        return new OtlpLog(resource, body, traceId, spanId, attributes);
    }

    // Resource { repeated KeyValue attributes = 1; }
    private static void Resource(ReadOnlySpan<byte> data, Dictionary<string, object> into)
    {
        var r = new ProtoReader(data);
        while (r.Next())
        {
            if (r.Field == 1 && r.WireType == 2)
                KeyValue(r.ReadBytes(), into);
            else
                r.Skip();
        }
    }

    // InstrumentationScope { string name = 1; string version = 2; }
    private static string ScopeName(ReadOnlySpan<byte> data)
    {
        var r = new ProtoReader(data);
        while (r.Next())
        {
            if (r.Field == 1 && r.WireType == 2)
                return r.ReadString();
            r.Skip();
        }
        return "";
    }

    // KeyValue { string key = 1; AnyValue value = 2; }
    private static void KeyValue(ReadOnlySpan<byte> data, Dictionary<string, object> into)
    {
        string key = "";
        object? value = null;
        var r = new ProtoReader(data);
        while (r.Next())
        {
            if (r.Field == 1 && r.WireType == 2)
                key = r.ReadString();
            else if (r.Field == 2 && r.WireType == 2)
                value = AnyValue(r.ReadBytes());
            else
                r.Skip();
        }
        if (value is not null)
            into[key] = value;
    }

    // AnyValue { oneof { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ... } }
    private static object? AnyValue(ReadOnlySpan<byte> data)
    {
        object? value = null;
        var r = new ProtoReader(data);
        while (r.Next())
        {
            switch (r.Field, r.WireType)
            {
                case (1, 2): value = r.ReadString(); break;
                case (2, 0): value = r.ReadVarint() != 0; break;
                case (3, 0): value = (long)r.ReadVarint(); break;
                case (4, 1): value = BitConverter.UInt64BitsToDouble(r.ReadFixed64()); break;
                default: r.Skip(); break;
            }
        }
        return value;
    }
}
