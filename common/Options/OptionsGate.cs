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
        foreach (var entry in services.GetServices<ValidatedOptionsEntry>())
        {
            try
            {
                entry.Resolve(services);
            }
            catch (OptionsValidationException ex)
            {
                failures.AddRange(ex.Failures);
            }
            catch (InvalidOperationException ex) when (ex.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
            {
                failures.Add(ex.Message);
            }
        }

        if (failures.Count > 0)
        {
            throw new OptionsValidationException(string.Empty, typeof(object), failures);
        }
    }
}
