# @summary The central syslog host: rsyslog receiving what every toolforge-log-shipper sends (RELP over TLS, and RFC
#   5425 TLS), filed as DIRECTORY/<connecting host>/<program>.log. The configuration is
#   packaging/rsyslog/toolforge-receiver.conf with this host's values (templates/toolforge-receiver.conf.epp renders
#   exactly that file from the shipped example's values; the module's tests check it).
#
# @example On the syslog host
#   include toolforge_agents::syslog
#
# @param certificate This host's puppet certificate (the senders check it against their CaBundle and the name
#   in their ServerName, or the URL's host).
# @param key Its private key.
# @param ca_bundle The puppet CA: senders' certificates must chain to it.
# @param permitted_peers Certificate names allowed to send (tls.permittedpeer / PermittedPeer, `*` wildcards).
# @param relp_tls_port RELP over TLS (the shippers' relp+tls:// destination).
# @param tls_port RFC 5425 syslog over TLS (tls://).
# @param relp_port Plaintext RELP, neither encrypted nor authenticated: off (undef) unless a host without
#   certificates needs it.
# @param directory Where the received logs go.
class toolforge_agents::syslog (
  String $certificate,
  String $key,
  String $ca_bundle,
  Array[String, 1] $permitted_peers,
  Integer[1, 65535] $relp_tls_port,
  Integer[1, 65535] $tls_port,
  Optional[Integer[1, 65535]] $relp_port,
  String $directory,
) {
  package { ['rsyslog', 'rsyslog-relp', 'rsyslog-gnutls']:
    ensure => present,
  }

  # root:adm 0750: every host's logs; rsyslogd (root) writes them, the adm group reads them as it reads /var/log.
  file { $directory:
    ensure => directory,
    owner  => 'root',
    group  => 'adm',
    mode   => '0750',
  }

  # root:root 0644, as Debian's own /etc/rsyslog.d files: rsyslogd runs as root; paths, ports and peer names only.
  # Checked by rsyslogd itself before it replaces the old one.
  file { '/etc/rsyslog.d/toolforge-receiver.conf':
    ensure       => file,
    owner        => 'root',
    group        => 'root',
    mode         => '0644',
    content      => epp('toolforge_agents/toolforge-receiver.conf.epp', {
      'certificate'     => $certificate,
      'key'             => $key,
      'ca_bundle'       => $ca_bundle,
      'permitted_peers' => $permitted_peers,
      'relp_tls_port'   => $relp_tls_port,
      'tls_port'        => $tls_port,
      'relp_port'       => $relp_port,
      'directory'       => $directory,
    }),
    validate_cmd => '/usr/sbin/rsyslogd -N1 -f %',
    require      => [Package['rsyslog', 'rsyslog-relp', 'rsyslog-gnutls'], File[$directory]],
    notify       => Service['rsyslog'],
  }

  # A restart: rsyslog does not re-read inputs on SIGHUP.
  service { 'rsyslog':
    ensure => running,
    enable => true,
  }
}
