require 'spec_helper'

describe 'toolforge_agents::builder' do
  it { is_expected.to compile.with_all_deps }

  it 'installs, configures and runs the builder-agent and the log-shipper' do
    is_expected.to contain_package('toolforge-builder-agent')
    is_expected.to contain_service('toolforge-builder-agent').with(ensure: 'running', enable: true)
    is_expected.to contain_service('toolforge-log-shipper').with(ensure: 'running', enable: true)
    is_expected.not_to contain_service('toolforge-node-agent')
  end

  it 'restarts the builder only when its own configuration changes' do
    is_expected.to contain_file(BUILDER).that_notifies('Service[toolforge-builder-agent]')
    expect([catalogue.resource('File', BUILDER)[:notify]].flatten.map(&:to_s)).to eq(['Service[toolforge-builder-agent]'])
    is_expected.to contain_file(SHIPPER).that_notifies('Service[toolforge-log-shipper]')
    is_expected.to contain_file(BUILDER).that_requires('Package[toolforge-builder-agent]')
  end

  it 'keeps the registry credentials from everyone but the unit\'s groups, and out of reports' do
    # DynamicUser= with SupplementaryGroups=docker puppet: it reads the file as the docker group.
    is_expected.to contain_file(BUILDER).with(owner: 'root', group: 'docker', mode: '0640', show_diff: false)
  end

  it 'writes builder-agent.json: the shipped example, key by key' do
    json = json_of(BUILDER)
    expect(json.keys).to eq(%w[Coordinator Builder Metrics Log])
    rendered = leaves(json)
    leaves(shipped_example('builder-agent.json.example')).each do |path, value|
      value = value.sub('FQDN', FQDN) if value.is_a?(String)
      expect([path, rendered[path]]).to eq([path, value])
    end
    expect(json['Builder']).to eq(
      'Repository' => '/srv/toollabs-images', 'Registry' => 'docker-registry.svc.toolforge.org',
      'ImagePrefix' => 'toolforge', 'DockerEndpoint' => 'unix:///var/run/docker.sock', 'Jobs' => 2,
      'CallTimeout' => '00:00:30', 'BuildTimeout' => '02:00:00', 'Credentials' => {},
      'DockerConfig' => '/root/.docker/config.json',
      'Git' => { 'Remote' => 'origin', 'Branch' => 'main', 'Checkout' => '', 'PollInterval' => '00:00:00', 'Push' => true, 'CommandTimeout' => '00:02:00' },
      'Promotion' => {
        'VerifyCommand' => ['/bin/sh', '-c', 'exit 0'], 'VerifyCommands' => {}, 'VerifyTimeout' => '00:02:00',
        'RegistryTimeout' => '00:00:30', 'StateFile' => '/var/lib/toolforge-builder-agent/verified.json',
      },
      'Hygiene' => { 'DanglingAfter' => '1.00:00:00', 'CacheBudgetGiB' => 40 },
      'Disk' => { 'Path' => '/var/lib/docker', 'MinFreePercent' => 10 },
    )
    expect(json['Coordinator']['Certificate']).to eq(CERT)
    expect(json['Metrics']).to eq('Address' => '127.0.0.1', 'Port' => 9503)
  end

  context 'with a site\'s hiera changing a few keys' do
    let(:facts) { { 'tfa_case' => 'builder_changed' } }

    it 'changes exactly those keys' do
      before = json_in_case('none', BUILDER)
      after = json_of(BUILDER)
      expect(changed_leaves(before, after)).to eq(%w[
        Builder:Credentials Builder:Credentials:docker-registry.svc.toolforge.org:Password
        Builder:Credentials:docker-registry.svc.toolforge.org:Username Builder:Jobs Metrics:Port
      ])
      expect(after['Builder']['Credentials']).to eq('docker-registry.svc.toolforge.org' => { 'Username' => 'builder', 'Password' => 'not-a-real-password' })
      expect(after['Metrics']['Port']).to eq(0)
    end
  end
end
