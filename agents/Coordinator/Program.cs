// toolforge-coordinator: everything is in CoordinatorHost.
return await Toolforge.Agents.Coordinator.CoordinatorHost.RunAsync(args);
