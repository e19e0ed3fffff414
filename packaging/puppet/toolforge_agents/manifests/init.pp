# @summary What every toolforge-agents daemon on a host shares: the configuration directory, where the agents report,
#   the host's puppet certificate, metrics and logging.
#
# Included by the role classes (toolforge_agents::worker, ::builder, ::control); a site sets these parameters in
# hiera, not by declaring the class. Defaults: data/common.yaml.
#
# @param config_dir The directory the units read (ConfigurationDirectory=toolforge-agents).
# @param coordinator_address Coordinator:Address of every agent: the haproxy address, or instances separated by
#   commas; empty: do not report.
# @param coordinator_addresses Coordinator:Addresses: more instances, as a list.
# @param node Coordinator:Node: the node name to report as; empty: the certificate's identity.
# @param certificate This host's puppet certificate (agents' Coordinator:Certificate, the coordinator's Certificate,
#   the log-shipper's TLS destinations).
# @param key Its private key.
# @param ca_bundle The puppet CA.
# @param call_timeout Coordinator:CallTimeout, the deadline of each call.
# @param initial_interval Coordinator:InitialInterval, the heartbeat until the coordinator names one.
# @param metrics_address Metrics:Address of every daemon (each role sets its own port).
# @param log The Log section of every daemon (Level, Console, Syslog: {Target, Facility}).
class toolforge_agents (
  String $config_dir,
  String $coordinator_address,
  Array[String] $coordinator_addresses,
  String $node,
  String $certificate,
  String $key,
  String $ca_bundle,
  String $call_timeout,
  String $initial_interval,
  String $metrics_address,
  Hash $log,
) {
  # The packages create it too; root:root 0755 as systemd's ConfigurationDirectory= would make it. Each file in it
  # carries its own owner and mode (see the role classes).
  file { $config_dir:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  # The Coordinator section of every agent (node-agent, builder-agent, log-shipper).
  $reporting = {
    'Address'         => $coordinator_address,
    'Addresses'       => $coordinator_addresses,
    'Node'            => $node,
    'Certificate'     => $certificate,
    'Key'             => $key,
    'CaBundle'        => $ca_bundle,
    'CallTimeout'     => $call_timeout,
    'InitialInterval' => $initial_interval,
  }
}
