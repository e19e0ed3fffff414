// toolforge-node-agent: everything is in NodeAgentHost.
return await Toolforge.Agents.NodeAgent.NodeAgentHost.RunAsync(args);
