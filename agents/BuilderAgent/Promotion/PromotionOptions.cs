using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.BuilderAgent.Promotion;

/// <summary>
/// The "Builder:Promotion" section: how a pushed <c>testing</c> digest is verified before `promote` may point
/// <c>latest</c> at it, and where the verdicts are kept. Read by `serve`, `verify` and `promote` alike, so the command
/// line can never verify with a weaker probe than the daemon's.
/// </summary>
public sealed class PromotionOptions : IValidatedOptions
{
    public const string Section = "Builder:Promotion";

    /// <summary>
    /// The probe every image runs unless <see cref="VerifyCommands"/> names it: the container's command (the image's
    /// ENTRYPOINT, when it has one, receives it as arguments). Toolforge's images have no ENTRYPOINT; the default
    /// proves the image starts, its libc and shell work.
    /// </summary>
    public string[] VerifyCommand { get; set; } = ["/bin/sh", "-c", "exit 0"];

    /// <summary>Per image path (as build takes it: "python311-sssd/base"), the probe that replaces <see cref="VerifyCommand"/>.</summary>
    public Dictionary<string, string[]> VerifyCommands { get; set; } = [];

    /// <summary>Deadline of one probe (the container is killed and removed when it passes; the image is not verified).</summary>
    public TimeSpan VerifyTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Deadline of each registry HTTP call (a manifest read or write, a token).</summary>
    public TimeSpan RegistryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Where the verdicts are kept (replaced atomically; in the daemon's state directory under the unit).</summary>
    public string StateFile { get; set; } = "/var/lib/toolforge-builder-agent/verified.json";

    public const int MaxArguments = 64;

    public const int MaxArgumentLength = 4096;

    public string[] CommandFor(string imagePath) => VerifyCommands.TryGetValue(imagePath, out var c) ? c : VerifyCommand;

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        problems.AddRange(CommandProblems(Check.Key(section, nameof(VerifyCommand)), VerifyCommand));
        foreach (var (image, command) in VerifyCommands)
        {
            if (image.Length == 0 || image.Length > 200 || image.StartsWith('/') || image.Contains("..", StringComparison.Ordinal) || image.Any(char.IsWhiteSpace))
            {
                problems.Add($"{Check.Key(section, nameof(VerifyCommands))}: \"{Common.Cli.Output.Escape(image.Length <= 60 ? image : image[..60] + "…")}\" is not an image path (as build takes it: python311-sssd/base)");
                continue;
            }

            problems.AddRange(CommandProblems(Check.Key(section, $"{nameof(VerifyCommands)}:{image}"), command));
        }

        problems.AddRange(Check.Positive(section, nameof(VerifyTimeout), VerifyTimeout));
        problems.AddRange(Check.Positive(section, nameof(RegistryTimeout), RegistryTimeout));
        problems.AddRange(Check.Required(section, nameof(StateFile), StateFile));
        if (StateFile.Length > 0)
        {
            problems.AddRange(Check.ReplaceableFile(section, nameof(StateFile), StateFile));
        }

        return problems;
    }

    private static IEnumerable<string> CommandProblems(string key, string[] command)
    {
        if (command.Length is 0 or > MaxArguments)
        {
            yield return $"{key}: must be a command and its arguments, 1 to {MaxArguments} strings (got {command.Length})";
        }
        else if (command[0].Length == 0)
        {
            yield return $"{key}: the command (first string) is empty";
        }
        else if (command.Any(a => a.Length > MaxArgumentLength || a.Contains('\0', StringComparison.Ordinal)))
        {
            yield return $"{key}: an argument is longer than {MaxArgumentLength} characters or holds a NUL";
        }
    }
}
