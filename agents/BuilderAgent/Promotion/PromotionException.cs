namespace Toolforge.Agents.BuilderAgent.Promotion;

/// <summary>A verify or promote that cannot be done, said in one line (registry errors, a verdict file that does not parse).</summary>
public sealed class PromotionException(string message, Exception? inner = null) : Exception(message, inner);
