# @summary The image builder host: toolforge-builder-agent (the daemon, `serve`) and toolforge-log-shipper.
#
# @example In the builder's role or profile
#   include toolforge_agents::builder
#
# @param builder The Builder section of builder-agent.json (README § builder-agent); a site's hiera merges into it
#   by key. Registry passwords go in Credentials (keep them in the site's private hiera).
# @param metrics_port Metrics:Port of the builder-agent (0: no /metrics).
class toolforge_agents::builder (
  Hash $builder,
  Integer[0, 65535] $metrics_port,
) {
  include toolforge_agents
  include toolforge_agents::log_shipper

  $config = "${toolforge_agents::config_dir}/builder-agent.json"

  package { 'toolforge-builder-agent':
    ensure => present,
  }

  # root:docker 0640: the unit runs as a DynamicUser= with SupplementaryGroups=docker puppet, so it reads the file
  # through its group. Builder:Credentials holds registry passwords: not world-readable, and given to the docker
  # group, whose members can already do anything on this host (the Docker socket is root-equivalent), rather than
  # to the puppet group, which exists to read certificates.
  file { $config:
    ensure    => file,
    owner     => 'root',
    group     => 'docker',
    mode      => '0640',
    show_diff => false,
    content   => toolforge_agents::to_json({
      'Coordinator' => $toolforge_agents::reporting,
      'Builder'     => $builder,
      'Metrics'     => { 'Address' => $toolforge_agents::metrics_address, 'Port' => $metrics_port },
      'Log'         => $toolforge_agents::log,
    }),
    require   => [Package['toolforge-builder-agent'], File[$toolforge_agents::config_dir]],
    notify    => Service['toolforge-builder-agent'],
  }

  service { 'toolforge-builder-agent':
    ensure => running,
    enable => true,
  }
}
