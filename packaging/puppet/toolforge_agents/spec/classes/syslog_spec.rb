require 'spec_helper'

RECEIVER = '/etc/rsyslog.d/toolforge-receiver.conf'.freeze

describe 'toolforge_agents::syslog' do
  let(:facts) { { 'networking' => { 'fqdn' => 'syslog.example', 'hostname' => 'syslog' } } }

  it { is_expected.to compile.with_all_deps }

  it 'installs rsyslog with RELP and TLS and restarts only rsyslog on a change' do
    %w[rsyslog rsyslog-relp rsyslog-gnutls].each { |p| is_expected.to contain_package(p) }
    is_expected.to contain_file(RECEIVER)
      .with(owner: 'root', group: 'root', mode: '0644', validate_cmd: '/usr/sbin/rsyslogd -N1 -f %')
      .that_notifies('Service[rsyslog]')
    expect([catalogue.resource('File', RECEIVER)[:notify]].flatten.map(&:to_s)).to eq(['Service[rsyslog]'])
    is_expected.to contain_file('/srv/syslog').with(ensure: 'directory', owner: 'root', group: 'adm', mode: '0750')
  end

  it 'renders exactly packaging/rsyslog/toolforge-receiver.conf for the shipped example\'s host and values' do
    expect(content_of(RECEIVER)).to eq(File.read(File.join(REPO_ROOT, 'packaging/rsyslog/toolforge-receiver.conf')))
  end

  context 'with a site\'s hiera adding a peer pattern and plaintext RELP' do
    let(:facts) { { 'networking' => { 'fqdn' => 'syslog.example', 'hostname' => 'syslog' }, 'tfa_case' => 'syslog_changed' } }

    it 'changes the two permitted-peer lists and turns the plaintext input on, nothing else' do
      shipped = File.read(File.join(REPO_ROOT, 'packaging/rsyslog/toolforge-receiver.conf')).lines
      rendered = content_of(RECEIVER).lines
      expect(rendered.size).to eq(shipped.size)
      changed = shipped.zip(rendered).reject { |a, b| a == b }.map { |_, b| b.strip }
      expect(changed).to eq([
        'PermittedPeer=["*.tools.eqiad1.wikimedia.cloud", "*.toolsbeta.eqiad1.wikimedia.cloud"])',
        'tls="on" tls.authmode="name" tls.permittedpeer=["*.tools.eqiad1.wikimedia.cloud", "*.toolsbeta.eqiad1.wikimedia.cloud"]',
        'input(type="imrelp" address="0.0.0.0" port="20515" ruleset="toolforgeRemote")',
      ])
    end
  end
end
