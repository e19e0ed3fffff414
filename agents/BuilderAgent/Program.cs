using Toolforge.Agents.BuilderAgent.Cli;
using Toolforge.Agents.BuilderAgent.Daemon;

// toolforge-builder-agent build|rebuild-all|plan|render|graph|clean|serve ...
return await BuilderCli.Create(BuilderDaemon.RunAsync).Parse(args).InvokeAsync();
