// toolforge-node-agent: everything is in Cli/NodeAgentHost (the command line) and Hosting/ (the wiring).
return await Toolforge.Agents.NodeAgent.Cli.NodeAgentHost.RunAsync(args);
