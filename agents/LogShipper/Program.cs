// toolforge-log-shipper: everything is in LogShipperHost.
return await Toolforge.Agents.LogShipper.LogShipperHost.RunAsync(args);
