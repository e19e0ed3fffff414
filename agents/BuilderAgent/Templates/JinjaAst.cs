using System.Globalization;
using System.Text;

namespace Toolforge.Agents.BuilderAgent.Templates;

// The template's syntax tree: what JinjaParser builds and JinjaRenderer walks.

internal abstract record Node(int Line);

internal sealed record DataNode(string Text, int Line) : Node(Line);

internal sealed record OutputNode(Expr Expr, int Line) : Node(Line);

internal sealed record ForNode(string Target, Expr Iter, List<Node> Body, int Line) : Node(Line);

internal sealed record MacroNode(string Name, List<(string Name, Expr? Default)> Params, List<Node> Body, int Line) : Node(Line);

internal sealed record ImportNode(Expr Template, string Alias, int Line) : Node(Line);

internal abstract record Expr(int Line);

internal sealed record NameExpr(string Name, int Line) : Expr(Line);

internal sealed record ConstExpr(object? Value, int Line) : Expr(Line);

internal sealed record ListExpr(List<Expr> Items, int Line) : Expr(Line);

internal sealed record AttrExpr(Expr Target, string Attribute, int Line) : Expr(Line);

internal sealed record ItemExpr(Expr Target, Expr Index, int Line) : Expr(Line);

internal sealed record CallExpr(Expr Target, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr(Line);
