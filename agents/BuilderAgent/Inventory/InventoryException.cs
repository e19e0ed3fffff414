namespace Toolforge.Agents.BuilderAgent.Inventory;

/// <summary>An image's package inventory could not be taken or sent; the message is one line, already escaped and cut.</summary>
public sealed class InventoryException(string message, Exception? inner = null) : Exception(message, inner);
