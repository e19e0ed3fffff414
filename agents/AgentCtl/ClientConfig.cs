using System.Text.Json;
using System.Text.Json.Serialization;

namespace Toolforge.Agents.AgentCtl;

/// <summary>~/.config/agentctl/config.json: where the coordinator is and which certificate to show it. Flags override.</summary>
internal sealed class ClientConfig
{
    [JsonPropertyName("server")]
    public string? Server { get; set; }

    [JsonPropertyName("cert")]
    public string? Cert { get; set; }

    [JsonPropertyName("key")]
    public string? Key { get; set; }

    [JsonPropertyName("ca")]
    public string? Ca { get; set; }

    public static string DefaultPath
    {
        get
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
            var baseDir = string.IsNullOrEmpty(xdg)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config")
                : xdg;
            return Path.Combine(baseDir, "agentctl", "config.json");
        }
    }

    public static ClientConfig Load(string? path)
    {
        var file = path ?? DefaultPath;
        var label = path is null ? file : $"--config {path}";
        if (Directory.Exists(file))
        {
            throw new CliException($"{label}: is a directory, not a configuration file");
        }

        if (!File.Exists(file))
        {
            if (path is not null)
            {
                throw new CliException($"{label}: does not exist");
            }

            return new ClientConfig();
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(file), ClientConfigJson.Default.ClientConfig) ?? new ClientConfig();
        }
        catch (Exception ex) when (Common.Files.FileProblem.Describe(ex, file) is { } problem)
        {
            throw new CliException($"{label}: {problem}");
        }
        catch (JsonException ex)
        {
            // Not ex.Message: it quotes the token the parser stopped at.
            throw new CliException($"{label}: not valid JSON (a syntax error at line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1})");
        }
    }

    public void Save(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, JsonSerializer.Serialize(this, ClientConfigJson.Default.ClientConfig) + "\n");
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ClientConfig))]
internal sealed partial class ClientConfigJson : JsonSerializerContext;
