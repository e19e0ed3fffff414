// toolforge-builder-agent: everything is in BuilderAgentHost.
return await Toolforge.Agents.BuilderAgent.BuilderAgentHost.RunAsync(args);
