namespace Toolforge.Agents.BuilderAgent.Inventory;

/// <summary>One Debian package as an image's dpkg database records it: name, version, architecture and dpkg's state word (installed, config-files, ...).</summary>
public sealed record DebPackage(string Name, string Version, string Architecture, string State);
