namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>
/// A write decided against a state the store no longer holds (another instance changed it first): nothing of it was
/// stored. Read the row again, decide again, write again.
/// </summary>
public sealed class StoreConflictException(string message) : Exception(message);
