using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

public static class OptionsGate
{
    /// <summary>
    /// Resolves every validated options type and throws one <see cref="OptionsValidationException"/> with all the
    /// problems found, so an admin fixes the whole file in one go rather than one key per restart.
    /// </summary>
    public static void ValidateAll(IServiceProvider services)
    {
        var failures = new List<string>();
        var entries = services.GetServices<ValidatedOptionsEntry>().ToList();

        // A misspelt section ("Coordinatr") or a TOOLFORGE_ variable naming no section is an error, not ignored.
        if (services.GetService<OwnConfiguration>() is { } own)
        {
            var sections = entries.Select(e => e.Section.Split(':')[0]).ToHashSet(StringComparer.OrdinalIgnoreCase);
            failures.AddRange(ConfigurationShape.UnknownSections(own.Root, sections));
        }

        foreach (var entry in entries)
        {
            try
            {
                entry.Resolve(services);
            }
            catch (OptionsValidationException ex)
            {
                failures.AddRange(ex.Failures);
            }
            catch (InvalidOperationException ex) when (ConfigurationValues.DescribeConversion(ex) is { } conversion)
            {
                failures.Add(conversion);
            }
        }

        if (failures.Count > 0)
        {
            throw new OptionsValidationException(string.Empty, typeof(object), failures);
        }
    }
}
