# @summary A Kubernetes worker: toolforge-node-agent and toolforge-log-shipper.
#
# @example In the worker's role or profile
#   include toolforge_agents::worker
#
# @param node_agent The NodeAgent section of node-agent.json (README § node-agent, every key). A site's hiera merges
#   into it by top-level key (`{Remediation: {...}}` replaces that subsection); lists are written as given.
# @param metrics_port Metrics:Port of the node-agent (0: no /metrics).
class toolforge_agents::worker (
  Hash $node_agent,
  Integer[0, 65535] $metrics_port,
) {
  include toolforge_agents
  include toolforge_agents::log_shipper

  $config = "${toolforge_agents::config_dir}/node-agent.json"

  package { 'toolforge-node-agent':
    ensure => present,
  }

  # root:root 0640: the unit runs as root (User=root: iptables-save, D-Bus restarts), the owner reads it without
  # CAP_DAC_OVERRIDE (which its capability set lacks); it holds no secret, but nobody else needs the host's
  # kubeconfig path and check layout.
  file { $config:
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0640',
    content => toolforge_agents::to_json({
      'Coordinator' => $toolforge_agents::reporting,
      'NodeAgent'   => $node_agent,
      'Metrics'     => { 'Address' => $toolforge_agents::metrics_address, 'Port' => $metrics_port },
      'Log'         => $toolforge_agents::log,
    }),
    require => [Package['toolforge-node-agent'], File[$toolforge_agents::config_dir]],
    notify  => Service['toolforge-node-agent'],
  }

  service { 'toolforge-node-agent':
    ensure => running,
    enable => true,
  }
}
