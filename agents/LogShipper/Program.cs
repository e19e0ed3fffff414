// toolforge-log-shipper: everything is in LogShipperHost.
return await Toolforge.Agents.LogShipper.Cli.LogShipperHost.RunAsync(args);
