require 'spec_helper'

PASSWORD_FILE = '/etc/toolforge-agents/coordinator.pw'.freeze
DROPIN = '/etc/systemd/system/toolforge-coordinator.service.d/postgresql-password.conf'.freeze

describe 'toolforge_agents::control' do
  context 'one coordinator on SQLite (the default)' do
    it { is_expected.to compile.with_all_deps }

    it 'runs the coordinator and nothing of the PostgreSQL set-up' do
      is_expected.to contain_package('toolforge-coordinator')
      is_expected.to contain_package('toolforge-agentctl')
      is_expected.to contain_service('toolforge-coordinator').with(ensure: 'running', enable: true)
      is_expected.not_to contain_package('haproxy')
      is_expected.not_to contain_service('haproxy')
      is_expected.to contain_file(PASSWORD_FILE).with_ensure('absent')
      is_expected.to contain_file(DROPIN).with_ensure('absent').that_notifies('Exec[toolforge-coordinator daemon-reload]')
    end

    it 'restarts the coordinator only when its own configuration changes' do
      is_expected.to contain_file(COORDINATOR).that_notifies('Service[toolforge-coordinator]')
      expect([catalogue.resource('File', COORDINATOR)[:notify]].flatten.map(&:to_s)).to eq(['Service[toolforge-coordinator]'])
    end

    it 'lets the unit\'s dynamic user read its configuration through the puppet group' do
      # DynamicUser=yes, SupplementaryGroups=puppet: root:root 0640 would be unreadable and stop it at start.
      is_expected.to contain_file(COORDINATOR).with(owner: 'root', group: 'puppet', mode: '0640')
    end

    it 'writes coordinator.json: the shipped example, key by key' do
      json = json_of(COORDINATOR)
      expect(json.keys).to eq(%w[Coordinator Metrics Log])
      rendered = leaves(json)
      leaves(shipped_example('coordinator.json.example')).each do |path, value|
        value = value.sub('FQDN', FQDN) if value.is_a?(String)
        expect([path, rendered[path]]).to eq([path, value])
      end
      c = json['Coordinator']
      expect(c['Store']).to eq('sqlite')
      expect(c['Database']).to eq('/var/lib/toolforge-coordinator/coordinator.db')
      expect(c['Port']).to eq(9500)
      expect(c['HealthAgentPort']).to eq(0)
      expect(c).not_to have_key('PostgreSql')
      expect([c['Certificate'], c['Key'], c['CaBundle']]).to eq([CERT, KEY, CA])
      documented = %w[ListenAddress Port Certificate Key CaBundle DeniedCertificates Admins Viewers Builders Nodes
                      ReportRate ReportBurst ReportsInFlight ReconnectRate Store Database HealthAgentPort HeartbeatInterval MissingAfterDays
                      RetentionDays SweepInterval ImageListMaxAge]
      expect(documented - c.keys).to eq([])
      expect(json['Metrics']).to eq('Address' => '127.0.0.1', 'Port' => 9501)
    end
  end

  context 'several instances on PostgreSQL behind haproxy' do
    let(:facts) { { 'tfa_case' => 'control_postgresql' } }

    it { is_expected.to compile.with_all_deps }

    it 'changes exactly the store, the ports behind haproxy and the admins the site named' do
      before = json_in_case('none', COORDINATOR)
      after = json_of(COORDINATOR)
      expect(changed_leaves(before, after)).to eq(%w[
        Coordinator:Admins Coordinator:HealthAgentPort Coordinator:Port Coordinator:PostgreSql:CommandTimeoutSeconds
        Coordinator:PostgreSql:ConnectionString Coordinator:PostgreSql:PasswordFile Coordinator:Store
      ])
      c = after['Coordinator']
      expect(c['Store']).to eq('postgresql')
      expect(c['Port']).to eq(9520)
      expect(c['HealthAgentPort']).to eq(9510)
      expect(c['Admins']).to eq(['admin-a.tools.eqiad1.wikimedia.cloud', 'admin-b.tools.eqiad1.wikimedia.cloud'])
      expect(c['PostgreSql']).to eq(
        'ConnectionString' => 'Host=tools-db-1.tools.eqiad1.wikimedia.cloud:5432,tools-db-2.tools.eqiad1.wikimedia.cloud:5432;Database=toolforge_coordinator;Username=coordinator;SSL Mode=VerifyFull;Target Session Attributes=primary;Host Recheck Seconds=2',
        'PasswordFile' => '/run/credentials/toolforge-coordinator.service/postgresql-password',
        'CommandTimeoutSeconds' => 10,
      )
    end

    it 'never writes the password into the JSON, only into a root:root 0600 file handed over as a credential' do
      expect(content_of(COORDINATOR)).not_to include('not-a-real-password')
      is_expected.to contain_file(PASSWORD_FILE).with(owner: 'root', group: 'root', mode: '0600', show_diff: false)
      expect(catalogue.resource('File', PASSWORD_FILE).sensitive_parameters).to include(:content)
      expect(content_of(PASSWORD_FILE)).to eq("not-a-real-password\n")
      is_expected.to contain_file(DROPIN).with(owner: 'root', group: 'root', mode: '0644')
      expect(content_of(DROPIN)).to include("[Service]\nLoadCredential=postgresql-password:#{PASSWORD_FILE}\n")
    end

    it 'reloads systemd before restarting the coordinator when the drop-in changes; a new password restarts it' do
      is_expected.to contain_file(DROPIN).that_notifies('Exec[toolforge-coordinator daemon-reload]')
      is_expected.to contain_exec('toolforge-coordinator daemon-reload').with(refreshonly: true)
        .that_notifies('Service[toolforge-coordinator]')
      is_expected.to contain_file(PASSWORD_FILE).that_notifies('Service[toolforge-coordinator]')
      expect([catalogue.resource('File', PASSWORD_FILE)[:notify]].flatten.map(&:to_s)).to eq(['Service[toolforge-coordinator]'])
    end

    it 'writes haproxy.cfg from the shipped file, reloading (not restarting) only haproxy' do
      is_expected.to contain_package('haproxy')
      is_expected.to contain_file('/etc/haproxy/haproxy.cfg')
        .with(owner: 'root', group: 'root', mode: '0644', validate_cmd: '/usr/sbin/haproxy -c -f %')
        .that_notifies('Service[haproxy]')
      expect([catalogue.resource('File', '/etc/haproxy/haproxy.cfg')[:notify]].flatten.map(&:to_s)).to eq(['Service[haproxy]'])
      is_expected.to contain_service('haproxy').with(restart: '/bin/systemctl reload haproxy')
      cfg = content_of('/etc/haproxy/haproxy.cfg')
      expect(cfg.lines.grep(/^\s*(bind|server) /).map(&:strip)).to eq([
        'bind 0.0.0.0:9500',
        'server coordinator1 tools-coordinator-1.tools.eqiad1.wikimedia.cloud:9520',
        'server coordinator2 tools-coordinator-2.tools.eqiad1.wikimedia.cloud:9520',
        'server coordinator3 tools-coordinator-3.tools.eqiad1.wikimedia.cloud:9520',
      ])
      expect(cfg).to include('agent-check agent-port 9510 ')
    end

    context 'with the shipped example\'s own ports' do
      let(:params) { { 'instance_port' => 9500 } }

      it 'renders exactly packaging/haproxy/toolforge-coordinator.cfg (the file the tests run haproxy on)' do
        expect(content_of('/etc/haproxy/haproxy.cfg')).to eq(File.read(File.join(REPO_ROOT, 'packaging/haproxy/toolforge-coordinator.cfg')))
      end
    end
  end

  context 'PostgreSQL without a password' do
    let(:params) { { 'store' => 'postgresql' } }

    it { is_expected.to compile.and_raise_error(/store postgresql needs toolforge_agents::control::postgresql_password/) }
  end
end
