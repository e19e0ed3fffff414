using Microsoft.Extensions.Options;

namespace Toolforge.Agents.NodeAgent.Kubernetes.Conditions;

/// <summary>
/// NodeAgent:Kubernetes:Conditions:Enabled needs the API server: NodeAgent:Kubernetes:Enabled true and Source api. A
/// Kubernetes section that is itself wrong is left to its own validation (named once, not twice).
/// </summary>
internal sealed class ConditionsNeedTheApiServer(IOptionsMonitor<KubernetesOptions> kubernetes) : IValidateOptions<NodeConditionsOptions>
{
    public ValidateOptionsResult Validate(string? name, NodeConditionsOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Skip;
        }

        KubernetesOptions k;
        try
        {
            k = kubernetes.CurrentValue;
        }
        catch (Exception ex) when (ex is OptionsValidationException or InvalidOperationException)
        {
            return ValidateOptionsResult.Skip;
        }

        return k.Enabled && k.Source == ClusterSource.Api ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"{NodeConditionsOptions.Section}:Enabled: needs the API server (Kubernetes:Enabled true and Source api)");
    }
}
