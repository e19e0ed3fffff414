// agentctl: the admins' view of the coordinator; everything is in AgentCtlHost.
return await Toolforge.Agents.AgentCtl.Commands.AgentCtlHost.RunAsync(args);
