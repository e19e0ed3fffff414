using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>
/// An options class that checks itself. Each problem is one string "Section:Key: reason", so an admin
/// reading the daemon's single error line knows which key in the JSON file to fix.
/// Its public properties are kept for reflection in a trimmed or NativeAOT binary (on every implementing type), which
/// is what <see cref="ConfigurationShape"/> walks.
/// </summary>
[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)]
public interface IValidatedOptions
{
    IEnumerable<string> Validate(string section);
}
