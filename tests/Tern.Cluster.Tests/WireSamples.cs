// Builds a sample instance of any wire record by reflection, with a distinct non-default
// value in every field, so a round trip proves each field survives.
using System.Reflection;

namespace Tern.Cluster.Tests;

internal static class WireSamples
{
    public static object Create(Type type, int depth = 0)
    {
        if (type == typeof(string))
            return "s" + depth;
        if (type == typeof(int))
            return 7 + depth;
        if (type == typeof(long))
            return 1L << 40;
        if (type == typeof(ulong))
            return 256UL << 20;
        if (type == typeof(bool))
            return true;
        if (type == typeof(double))
            return 0.5;
        if (type == typeof(Guid))
            return new Guid(0x1234_5678 + depth, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
        if (type == typeof(byte[]))
            return new byte[] { 1, 2, 3, (byte)depth };
        if (type.IsEnum)
            return Enum.GetValues(type).Cast<object>().Last();
        if (Nullable.GetUnderlyingType(type) is { } inner)
            return Create(inner, depth);
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>))
        {
            var element = type.GetGenericArguments()[0];
            var array = Array.CreateInstance(element, 2);
            array.SetValue(Create(element, depth + 1), 0);
            array.SetValue(Create(element, depth + 2), 1);
            return array;
        }
        var ctor = type.GetConstructors(BindingFlags.Public | BindingFlags.Instance).OrderByDescending(c => c.GetParameters().Length).First();
        var args = ctor.GetParameters().Select(p => Create(p.ParameterType, depth + 1)).ToArray();
        return ctor.Invoke(args);
    }
}
