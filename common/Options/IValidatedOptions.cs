using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>
/// An options class that checks itself. Each problem is one string "Section:Key: reason", so an admin
/// reading the daemon's single error line knows which key in the JSON file to fix.
/// </summary>
public interface IValidatedOptions
{
    IEnumerable<string> Validate(string section);
}
