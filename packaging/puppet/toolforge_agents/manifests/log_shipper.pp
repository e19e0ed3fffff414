# @summary toolforge-log-shipper: the host's journal to the central rsyslog host. Included by
#   toolforge_agents::worker and toolforge_agents::builder (every host ships its journal).
#
# @param destinations Shipper:Destinations, tried in order. Each is a hash with Url and optionally CaBundle,
#   Certificate, Key (default: the host's puppet files from toolforge_agents) and ServerName.
# @param shipper The rest of the Shipper section (README § log-shipper); a site's hiera merges into it by key.
# @param metrics_port Metrics:Port of the log-shipper (0: no /metrics).
class toolforge_agents::log_shipper (
  Array[Hash] $destinations,
  Hash $shipper,
  Integer[0, 65535] $metrics_port,
) {
  include toolforge_agents

  $config = "${toolforge_agents::config_dir}/log-shipper.json"
  $tls = {
    'CaBundle'    => $toolforge_agents::ca_bundle,
    'Certificate' => $toolforge_agents::certificate,
    'Key'         => $toolforge_agents::key,
  }

  package { 'toolforge-log-shipper':
    ensure => present,
  }

  # root:puppet 0640: the unit runs as a DynamicUser= whose SupplementaryGroups= include puppet (it reads the host's
  # puppet key with the same group), so the group bit is how it reads its configuration. It holds no secret (paths
  # and addresses), and is still not world-readable.
  file { $config:
    ensure  => file,
    owner   => 'root',
    group   => 'puppet',
    mode    => '0640',
    content => toolforge_agents::to_json({
      'Coordinator' => $toolforge_agents::reporting,
      'Shipper'     => { 'Destinations' => $destinations.map |$d| { $tls + $d } } + $shipper,
      'Metrics'     => { 'Address' => $toolforge_agents::metrics_address, 'Port' => $metrics_port },
      'Log'         => $toolforge_agents::log,
    }),
    require => [Package['toolforge-log-shipper'], File[$toolforge_agents::config_dir]],
    notify  => Service['toolforge-log-shipper'],
  }

  service { 'toolforge-log-shipper':
    ensure => running,
    enable => true,
  }
}
