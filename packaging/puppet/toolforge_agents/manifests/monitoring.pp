# @summary The Prometheus host: scrapes every toolforge-agents daemon's /metrics and evaluates
#   packaging/prometheus/toolforge-agents.rules.yml (the module ships that file as it is).
#
# The scrape job is packaging/prometheus/scrape-config.example.yml with the site's targets
# (templates/scrape-config.yml.epp renders exactly that file from the example's values). Debian 12's Prometheus (2.42)
# cannot include a scrape file, so this class writes the whole prometheus.yml.
#
# @example On the Prometheus host
#   include toolforge_agents::monitoring
#
# @param scrape_interval How often each daemon is scraped (and the rules evaluated).
# @param coordinators host:port of each coordinator's /metrics (Metrics:Port 9501).
# @param node_agents host:port of each node-agent's /metrics (9502).
# @param builder_agents host:port of each builder-agent's /metrics (9503).
# @param log_shippers host:port of each log-shipper's /metrics (9504).
# @param alertmanagers host:port of each Alertmanager the alerts go to.
# @param config_file Prometheus's configuration.
# @param rules_file Where the alert rules go.
class toolforge_agents::monitoring (
  String $scrape_interval,
  Array[String] $coordinators,
  Array[String] $node_agents,
  Array[String] $builder_agents,
  Array[String] $log_shippers,
  Array[String] $alertmanagers,
  String $config_file,
  String $rules_file,
) {
  package { 'prometheus':
    ensure => present,
  }

  # root:root 0644, as Debian ships /etc/prometheus: the prometheus user reads both; alert rules and host names only.
  file { $rules_file:
    ensure       => file,
    owner        => 'root',
    group        => 'root',
    mode         => '0644',
    content      => file('toolforge_agents/toolforge-agents.rules.yml'),
    validate_cmd => '/usr/bin/promtool check rules %',
    require      => Package['prometheus'],
    notify       => Service['prometheus'],
  }

  $scrape = epp('toolforge_agents/scrape-config.yml.epp', {
    'scrape_interval' => $scrape_interval,
    'targets'         => {
      'coordinator'   => $coordinators,
      'node-agent'    => $node_agents,
      'builder-agent' => $builder_agents,
      'log-shipper'   => $log_shippers,
    },
  })
  $global = epp('toolforge_agents/prometheus.yml.epp', {
    'scrape_interval' => $scrape_interval,
    'alertmanagers'   => $alertmanagers,
    'rules_file'      => $rules_file,
  })

  file { $config_file:
    ensure       => file,
    owner        => 'root',
    group        => 'root',
    mode         => '0644',
    content      => "${global}${scrape}",
    validate_cmd => '/usr/bin/promtool check config --syntax-only %',
    require      => [Package['prometheus'], File[$rules_file]],
    notify       => Service['prometheus'],
  }

  # A reload (SIGHUP, Debian's unit has ExecReload) re-reads both files without losing the in-memory samples.
  service { 'prometheus':
    ensure  => running,
    enable  => true,
    restart => '/bin/systemctl reload prometheus',
  }
}
