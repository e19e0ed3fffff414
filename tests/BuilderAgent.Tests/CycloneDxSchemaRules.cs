using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// A CycloneDX document checked against CycloneDX's own bom-1.5.schema.json (vendored unchanged under
/// Schemas/cyclonedx, see SOURCE.md there) with JsonSchema.Net, offline — the two schemas it refers to (spdx, jsf) are
/// registered under their own $id — with "format" asserted (date-time, iri-reference, ...), plus the one rule the
/// specification states in words rather than in the schema: "every bom-ref MUST be unique within the BOM" (refType's
/// description). Returns every violation found, each "where: what".
/// </summary>
internal static class CycloneDxSchemaRules
{
    private static readonly Lazy<(JsonSchema Bom, EvaluationOptions Options)> Schema = new(() =>
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "Schemas", "cyclonedx");
        var options = new EvaluationOptions { OutputFormat = OutputFormat.List, RequireFormatValidation = true };
        foreach (var referred in new[] { "spdx.schema.json", "jsf-0.82.schema.json" })
        {
            options.SchemaRegistry.Register(JsonSchema.FromFile(Path.Combine(dir, referred)));
        }

        var bom = JsonSchema.FromFile(Path.Combine(dir, "bom-1.5.schema.json"));
        options.SchemaRegistry.Register(bom);
        return (bom, options);
    });

    public static List<string> Violations(byte[] document)
    {
        var errors = new List<string>();
        var node = JsonNode.Parse(document);
        var (bom, options) = Schema.Value;
        var result = bom.Evaluate(node, options);
        if (!result.IsValid)
        {
            foreach (var detail in result.Details.Where(d => d.HasErrors))
            {
                foreach (var (keyword, message) in detail.Errors!)
                {
                    errors.Add($"{detail.InstanceLocation}: {keyword}: {message} ({detail.EvaluationPath})");
                }
            }

            if (errors.Count == 0)
            {
                errors.Add("the document does not match bom-1.5.schema.json (no detail given)");
            }
        }

        using var doc = JsonDocument.Parse(document);
        var refs = new HashSet<string>(StringComparer.Ordinal);
        void Walk(JsonElement e, string where)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                if (e.TryGetProperty("bom-ref", out var r) && r.ValueKind == JsonValueKind.String && !refs.Add(r.GetString()!))
                {
                    errors.Add($"{where}/bom-ref: {r.GetString()} is not unique in the BOM (refType: every bom-ref MUST be unique)");
                }

                foreach (var p in e.EnumerateObject())
                {
                    Walk(p.Value, $"{where}/{p.Name}");
                }
            }
            else if (e.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    Walk(item, $"{where}/{i++}");
                }
            }
        }

        Walk(doc.RootElement, string.Empty);
        return errors;
    }
}
