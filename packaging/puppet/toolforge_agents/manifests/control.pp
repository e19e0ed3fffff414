# @summary The control host: toolforge-coordinator. One instance on SQLite, or several on PostgreSQL behind haproxy
#   on each control host (README § Several instances).
#
# @example One coordinator on SQLite
#   include toolforge_agents::control
#
# @example Three instances on PostgreSQL (hiera on each control host)
#   toolforge_agents::control::store: postgresql
#   toolforge_agents::control::postgresql_password: "%{alias('profile::toolforge::coordinator::db_password')}"
#
# @param coordinator The Coordinator section of coordinator.json (README § Configuration, coordinator); a site's
#   hiera merges into it by key. Certificate, Key and CaBundle come from toolforge_agents; Store, PostgreSql and,
#   behind haproxy, Port and HealthAgentPort from the parameters below.
# @param metrics_port Metrics:Port of the coordinator (0: no /metrics).
# @param store `sqlite` (one instance, the file in Database) or `postgresql` (several behind haproxy).
# @param instances postgresql: the control hosts, one haproxy server line each.
# @param frontend postgresql: where haproxy listens for agents and agentctl (the agents' Coordinator:Address).
# @param instance_port postgresql: the coordinator's own Port behind haproxy. Not the frontend's port: haproxy and the
#   coordinator run on the same host, and a second listener on 0.0.0.0:9500 would not start.
# @param health_agent_port postgresql: Coordinator:HealthAgentPort, haproxy's agent-check port.
# @param postgresql_connection_string postgresql: PostgreSql:ConnectionString, without a password (refused at start).
# @param postgresql_command_timeout postgresql: PostgreSql:CommandTimeoutSeconds.
# @param postgresql_password postgresql: the database password (required). Written root:root 0600 and handed to the
#   unit's dynamic user as the systemd credential `postgresql-password`; never in the JSON.
class toolforge_agents::control (
  Hash $coordinator,
  Integer[0, 65535] $metrics_port,
  Enum['sqlite', 'postgresql'] $store,
  Array[String, 1] $instances,
  String $frontend,
  Integer[1, 65535] $instance_port,
  Integer[1, 65535] $health_agent_port,
  String $postgresql_connection_string,
  Integer[1] $postgresql_command_timeout,
  Optional[Sensitive[String[1]]] $postgresql_password = undef,
) {
  include toolforge_agents

  $config = "${toolforge_agents::config_dir}/coordinator.json"
  $password_file = "${toolforge_agents::config_dir}/coordinator.pw"
  $dropin_dir = '/etc/systemd/system/toolforge-coordinator.service.d'
  $dropin = "${dropin_dir}/postgresql-password.conf"
  $credential = 'postgresql-password'

  $own = $coordinator + {
    'Certificate' => $toolforge_agents::certificate,
    'Key'         => $toolforge_agents::key,
    'CaBundle'    => $toolforge_agents::ca_bundle,
    'Store'       => $store,
  }
  $settings = $store ? {
    'postgresql' => $own + {
      'Port'            => $instance_port,
      'HealthAgentPort' => $health_agent_port,
      'PostgreSql'      => {
        'ConnectionString'      => $postgresql_connection_string,
        'PasswordFile'          => "/run/credentials/toolforge-coordinator.service/${credential}",
        'CommandTimeoutSeconds' => $postgresql_command_timeout,
      },
    },
    default      => $own,
  }

  package { 'toolforge-coordinator':
    ensure => present,
  }

  # Admins ask the coordinator from its host: agentctl (their own certificate, ~/.config/agentctl/config.json).
  package { 'toolforge-agentctl':
    ensure => present,
  }

  # root:puppet 0640: the unit runs as a DynamicUser= whose SupplementaryGroups= is puppet (the group that reads the
  # host's puppet key), so it reads its configuration through the group; a root:root 0640 file would stop it at
  # start. No secret is in it (the database password is a credential, below); still not world-readable: it names
  # the admins and the database hosts.
  file { $config:
    ensure  => file,
    owner   => 'root',
    group   => 'puppet',
    mode    => '0640',
    content => toolforge_agents::to_json({
      'Coordinator' => $settings,
      'Metrics'     => { 'Address' => $toolforge_agents::metrics_address, 'Port' => $metrics_port },
      'Log'         => $toolforge_agents::log,
    }),
    require => [Package['toolforge-coordinator'], File[$toolforge_agents::config_dir]],
    notify  => Service['toolforge-coordinator'],
  }

  service { 'toolforge-coordinator':
    ensure => running,
    enable => true,
  }

  # Every change of the drop-in (written, or removed on going back to SQLite) needs a daemon-reload before the
  # restart, or systemd would start the coordinator with the old LoadCredential=.
  exec { 'toolforge-coordinator daemon-reload':
    command     => '/bin/systemctl daemon-reload',
    refreshonly => true,
    notify      => Service['toolforge-coordinator'],
  }

  if $store == 'postgresql' {
    if $postgresql_password =~ Undef {
      fail('toolforge_agents::control: store postgresql needs toolforge_agents::control::postgresql_password')
    }

    # root:root 0600: the password itself. Only systemd (PID 1, root) reads it, when it starts the unit, and copies
    # it to /run/credentials/toolforge-coordinator.service/, readable by the dynamic user alone.
    file { $password_file:
      ensure    => file,
      owner     => 'root',
      group     => 'root',
      mode      => '0600',
      show_diff => false,
      content   => Sensitive("${postgresql_password.unwrap}\n"),
      require   => File[$toolforge_agents::config_dir],
      notify    => Service['toolforge-coordinator'],
    }

    # root:root 0755 / 0644, as every unit file: it names a path, no secret.
    file { $dropin_dir:
      ensure => directory,
      owner  => 'root',
      group  => 'root',
      mode   => '0755',
    }
    file { $dropin:
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => "# Managed by puppet (toolforge_agents::control).\n[Service]\nLoadCredential=${credential}:${password_file}\n",
      notify  => Exec['toolforge-coordinator daemon-reload'],
    }

    package { 'haproxy':
      ensure => present,
    }
    # root:root 0644, as Debian ships haproxy.cfg: haproxy starts as root and reads it; host names and ports only.
    # Checked by haproxy itself before it replaces the old one.
    file { '/etc/haproxy/haproxy.cfg':
      ensure       => file,
      owner        => 'root',
      group        => 'root',
      mode         => '0644',
      content      => epp('toolforge_agents/haproxy.cfg.epp', {
        'frontend'          => $frontend,
        'instances'         => $instances,
        'instance_port'     => $instance_port,
        'health_agent_port' => $health_agent_port,
      }),
      validate_cmd => '/usr/sbin/haproxy -c -f %',
      require      => Package['haproxy'],
      notify       => Service['haproxy'],
    }
    # A reload (new workers, -sf) keeps the open agent streams; a restart would cut every one of them.
    service { 'haproxy':
      ensure  => running,
      enable  => true,
      restart => '/bin/systemctl reload haproxy',
    }
  } else {
    # One instance on SQLite: no credential, and no drop-in naming one (removed when the host ran PostgreSQL).
    file { $password_file:
      ensure => absent,
      notify => Service['toolforge-coordinator'],
    }
    file { $dropin:
      ensure => absent,
      notify => Exec['toolforge-coordinator daemon-reload'],
    }
  }
}
