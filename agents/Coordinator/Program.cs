// toolforge-coordinator: everything is in CoordinatorHost.
return await Toolforge.Agents.Coordinator.Hosting.CoordinatorHost.RunAsync(args);
