# Example: how Toolforge's puppet deploys one of the daemons (here the node-agent on every worker).
# The package installs the unit enabled but idle (ConditionPathExists on the config); this class writes the config
# from a template, then keeps the service running and restarts it when the config changes.
class profile::toolforge::node_agent (
  Stdlib::HTTPUrl $coordinator = lookup('profile::toolforge::agents::coordinator'),
  Boolean         $remediate_kubelet = false,
) {
  package { 'toolforge-node-agent':
    ensure => present,
  }

  file { '/etc/toolforge-agents/node-agent.json':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0640',
    content => epp('profile/toolforge/node-agent.json.epp', {
      'coordinator'       => $coordinator,
      'fqdn'              => $facts['networking']['fqdn'],
      'remediate_kubelet' => $remediate_kubelet,
    }),
    require => Package['toolforge-node-agent'],
    notify  => Service['toolforge-node-agent'],
  }

  service { 'toolforge-node-agent':
    ensure  => running,
    enable  => true,
    require => File['/etc/toolforge-agents/node-agent.json'],
  }
}
