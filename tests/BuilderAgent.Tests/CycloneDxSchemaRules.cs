using System.Text.Json;
using System.Text.RegularExpressions;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// The rules of CycloneDX's bom-1.5.schema.json (github.com/CycloneDX/specification, schema/bom-1.5.schema.json) that a
/// document of ours touches, checked one by one: no JSON-schema validator is in the test's dependencies and the schema
/// itself is not vendored here, so each rule is written out with the schema's own words. Returns every violation found.
/// - root: required bomFormat, specVersion, version; additionalProperties false; bomFormat enum ["CycloneDX"];
///   specVersion a string; serialNumber pattern ^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$;
///   version an integer (minimum 1 in the definition's description: "default 1"); components an array, uniqueItems;
/// - metadata: additionalProperties false (timestamp: string, format date-time; tools: the object form with components;
///   component);
/// - component: required type and name; additionalProperties false; type enum (application, framework, library, container,
///   platform, operating-system, device, device-driver, firmware, file, machine-learning-model, data); name, version,
///   purl, bom-ref strings; properties items {name, value} strings, additionalProperties false;
/// - bom-ref: "every bom-ref MUST be unique within the BOM" (refType's description in the spec).
/// </summary>
internal static class CycloneDxSchemaRules
{
    private static readonly HashSet<string> RootKeys = ["$schema", "bomFormat", "specVersion", "serialNumber", "version", "metadata", "components", "services",
        "externalReferences", "dependencies", "compositions", "vulnerabilities", "annotations", "formulation", "properties", "signature"];

    private static readonly HashSet<string> MetadataKeys = ["timestamp", "lifecycles", "tools", "authors", "component", "manufacture", "supplier", "licenses", "properties"];

    private static readonly HashSet<string> ComponentKeys = ["type", "mime-type", "bom-ref", "supplier", "author", "publisher", "group", "name", "version", "description",
        "scope", "hashes", "licenses", "copyright", "cpe", "purl", "swid", "modified", "pedigree", "externalReferences", "properties", "components", "evidence",
        "releaseNotes", "modelCard", "data", "signature"];

    private static readonly HashSet<string> ComponentTypes = ["application", "framework", "library", "container", "platform", "operating-system", "device",
        "device-driver", "firmware", "file", "machine-learning-model", "data"];

    public static List<string> Violations(byte[] document)
    {
        var errors = new List<string>();
        using var doc = JsonDocument.Parse(document);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return ["root: not an object"];
        }

        foreach (var required in new[] { "bomFormat", "specVersion", "version" })
        {
            if (!root.TryGetProperty(required, out _))
            {
                errors.Add($"root: required {required} missing");
            }
        }

        Unknown(root, RootKeys, "root", errors);
        if (root.TryGetProperty("bomFormat", out var f) && (f.ValueKind != JsonValueKind.String || f.GetString() != "CycloneDX"))
        {
            errors.Add("bomFormat: not \"CycloneDX\"");
        }

        if (root.TryGetProperty("specVersion", out var sv) && sv.ValueKind != JsonValueKind.String)
        {
            errors.Add("specVersion: not a string");
        }

        if (root.TryGetProperty("serialNumber", out var sn) && (sn.ValueKind != JsonValueKind.String
            || !Regex.IsMatch(sn.GetString()!, "^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")))
        {
            errors.Add("serialNumber: does not match ^urn:uuid:…$");
        }

        if (root.TryGetProperty("version", out var v) && (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n) || n < 1))
        {
            errors.Add("version: not an integer ≥ 1");
        }

        var refs = new HashSet<string>(StringComparer.Ordinal);
        if (root.TryGetProperty("metadata", out var metadata))
        {
            Unknown(metadata, MetadataKeys, "metadata", errors);
            if (metadata.TryGetProperty("timestamp", out var ts) && (ts.ValueKind != JsonValueKind.String
                || !DateTimeOffset.TryParse(ts.GetString(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out _)))
            {
                errors.Add("metadata.timestamp: not a date-time");
            }

            if (metadata.TryGetProperty("tools", out var tools))
            {
                Unknown(tools, ["components", "services"], "metadata.tools", errors);
                if (tools.TryGetProperty("components", out var tc))
                {
                    foreach (var c in tc.EnumerateArray())
                    {
                        Component(c, "metadata.tools.components[]", errors, null);
                    }
                }
            }

            if (metadata.TryGetProperty("component", out var mc))
            {
                Component(mc, "metadata.component", errors, refs);
            }
        }

        if (root.TryGetProperty("components", out var components))
        {
            if (components.ValueKind != JsonValueKind.Array)
            {
                errors.Add("components: not an array");
            }
            else
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                var i = 0;
                foreach (var c in components.EnumerateArray())
                {
                    if (!seen.Add(c.GetRawText()))
                    {
                        errors.Add($"components[{i}]: not unique (uniqueItems)");
                    }

                    Component(c, $"components[{i}]", errors, refs);
                    i++;
                }
            }
        }

        return errors;
    }

    private static void Component(JsonElement c, string where, List<string> errors, HashSet<string>? refs)
    {
        if (c.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{where}: not an object");
            return;
        }

        foreach (var required in new[] { "type", "name" })
        {
            if (!c.TryGetProperty(required, out _))
            {
                errors.Add($"{where}: required {required} missing");
            }
        }

        Unknown(c, ComponentKeys, where, errors);
        if (c.TryGetProperty("type", out var t) && (t.ValueKind != JsonValueKind.String || !ComponentTypes.Contains(t.GetString()!)))
        {
            errors.Add($"{where}.type: not one of the schema's component types");
        }

        foreach (var s in new[] { "name", "version", "purl", "bom-ref", "group" })
        {
            if (c.TryGetProperty(s, out var e) && e.ValueKind != JsonValueKind.String)
            {
                errors.Add($"{where}.{s}: not a string");
            }
        }

        if (c.TryGetProperty("bom-ref", out var r) && refs is not null && !refs.Add(r.GetString() ?? string.Empty))
        {
            errors.Add($"{where}.bom-ref: {r.GetString()} is not unique in the BOM");
        }

        if (c.TryGetProperty("properties", out var props))
        {
            foreach (var p in props.EnumerateArray())
            {
                Unknown(p, ["name", "value"], where + ".properties[]", errors);
                if (!p.TryGetProperty("name", out var pn) || pn.ValueKind != JsonValueKind.String || (p.TryGetProperty("value", out var pv) && pv.ValueKind != JsonValueKind.String))
                {
                    errors.Add($"{where}.properties[]: name and value must be strings");
                }
            }
        }
    }

    private static void Unknown(JsonElement e, HashSet<string> allowed, string where, List<string> errors)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{where}: not an object");
            return;
        }

        foreach (var p in e.EnumerateObject())
        {
            if (!allowed.Contains(p.Name))
            {
                errors.Add($"{where}: property {p.Name} is not allowed (additionalProperties: false)");
            }
        }
    }
}
