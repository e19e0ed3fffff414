require 'spec_helper'

describe 'toolforge_agents::worker' do
  it { is_expected.to compile.with_all_deps }

  it 'installs, configures and runs the node-agent and the log-shipper' do
    is_expected.to contain_package('toolforge-node-agent')
    is_expected.to contain_package('toolforge-log-shipper')
    is_expected.to contain_service('toolforge-node-agent').with(ensure: 'running', enable: true)
    is_expected.to contain_service('toolforge-log-shipper').with(ensure: 'running', enable: true)
  end

  it 'restarts each daemon only when its own configuration changes' do
    is_expected.to contain_file(NODE_AGENT).that_notifies('Service[toolforge-node-agent]')
    is_expected.to contain_file(SHIPPER).that_notifies('Service[toolforge-log-shipper]')
    expect([catalogue.resource('File', NODE_AGENT)[:notify]].flatten.map(&:to_s)).to eq(['Service[toolforge-node-agent]'])
    expect([catalogue.resource('File', SHIPPER)[:notify]].flatten.map(&:to_s)).to eq(['Service[toolforge-log-shipper]'])
    is_expected.to contain_file(NODE_AGENT).that_requires('Package[toolforge-node-agent]')
  end

  it 'gives each file the owner its unit reads it as' do
    # node-agent: User=root. log-shipper: DynamicUser= with SupplementaryGroups=puppet.
    is_expected.to contain_file(NODE_AGENT).with(owner: 'root', group: 'root', mode: '0640')
    is_expected.to contain_file(SHIPPER).with(owner: 'root', group: 'puppet', mode: '0640')
  end

  it 'writes node-agent.json: the shipped example, key by key, with this host\'s certificate' do
    json = json_of(NODE_AGENT)
    example = shipped_example('node-agent.json.example')
    expect(json.keys).to eq(%w[Coordinator NodeAgent Metrics Log])
    expect(json['Coordinator']).to eq(
      'Address' => 'https://coordinator.example:9500', 'Addresses' => [], 'Node' => '',
      'Certificate' => CERT, 'Key' => KEY, 'CaBundle' => CA,
      'CallTimeout' => '00:00:10', 'InitialInterval' => '00:00:30',
    )
    # Every value the example sets is rendered the same (the example's FQDN placeholder is this host).
    rendered = leaves(json)
    leaves(example).each do |path, value|
      value = value.sub('FQDN', FQDN) if value.is_a?(String)
      expect([path, rendered[path]]).to eq([path, value])
    end
    expect(json['NodeAgent']['Nftables']['Arguments']).to eq(['-j', 'list', 'table', 'ip', 'kube-proxy'])
    expect(json['NodeAgent']['TenantPolicy']['ExemptNamespaces']).to eq(['kube-system'])
    expect(json['NodeAgent']['Journal']['Rules']).to eq([])
    expect(json['Metrics']).to eq('Address' => '127.0.0.1', 'Port' => 9502)
    expect(json['Log']).to eq('Level' => 'Information', 'Console' => 'journal', 'Syslog' => { 'Target' => '', 'Facility' => 'daemon' })
  end

  it 'names every key the README documents for the node-agent' do
    rendered = leaves(json_of(NODE_AGENT)).keys
    documented = %w[
      NodeAgent:NodeName NodeAgent:DBusAddress NodeAgent:Runtime NodeAgent:StateDirectory
      NodeAgent:Cri:Endpoint NodeAgent:Cri:Name NodeAgent:Cri:Unit NodeAgent:Cri:Interval NodeAgent:Cri:CallTimeout NodeAgent:Cri:ListTimeout
      NodeAgent:Kubelet:Unit NodeAgent:Kubelet:HealthzUrl NodeAgent:Kubelet:Interval NodeAgent:Kubelet:Timeout NodeAgent:Kubelet:FlapRestarts NodeAgent:Kubelet:FlapWindow
      NodeAgent:Docker:Endpoint NodeAgent:Docker:Unit NodeAgent:Docker:Interval NodeAgent:Docker:PingTimeout NodeAgent:Docker:ListTimeout
      NodeAgent:Kubernetes:Kubeconfig NodeAgent:Kubernetes:RequestTimeout NodeAgent:Kubernetes:WatchTimeout
      NodeAgent:Kubernetes:Conditions:Enabled NodeAgent:Kubernetes:Conditions:Types NodeAgent:Kubernetes:Conditions:Prefix
      NodeAgent:Kubernetes:Conditions:HeartbeatPeriod NodeAgent:Kubernetes:Conditions:EvaluateInterval NodeAgent:Kubernetes:Conditions:Events
      NodeAgent:Kubernetes:Conditions:EventNamespace NodeAgent:Kubernetes:Conditions:EventAggregateWindow NodeAgent:Kubernetes:Conditions:EventFlushInterval
      NodeAgent:StuckProcesses:Enabled NodeAgent:StuckProcesses:Interval NodeAgent:StuckProcesses:After NodeAgent:StuckProcesses:Warning
      NodeAgent:StuckProcesses:Failing NodeAgent:StuckProcesses:IgnoreKernelThreads NodeAgent:StuckProcesses:IgnoreCommands
      NodeAgent:StuckProcesses:ProcRoot NodeAgent:StuckProcesses:MaxListed
      NodeAgent:KubeProxy:Mode NodeAgent:KubeProxy:ProxyModeUrl
      NodeAgent:Iptables:Command NodeAgent:Iptables:Arguments NodeAgent:Iptables:Interval NodeAgent:Iptables:Timeout
      NodeAgent:Iptables:CheckOtherBackend NodeAgent:Iptables:ForbidNodePorts
      NodeAgent:Nftables:Enabled NodeAgent:Nftables:Command NodeAgent:Nftables:Arguments NodeAgent:Nftables:Ipv6Arguments
      NodeAgent:Nftables:Interval NodeAgent:Nftables:Timeout NodeAgent:Nftables:ForbidNodePorts
      NodeAgent:Conntrack:Enabled NodeAgent:Conntrack:Command NodeAgent:Conntrack:Arguments NodeAgent:Conntrack:Interval
      NodeAgent:Conntrack:Timeout NodeAgent:Conntrack:GracePeriod NodeAgent:Conntrack:Remediate
      NodeAgent:Journal:Rules
      NodeAgent:TenantPolicy:AllowedRegistryPrefix NodeAgent:TenantPolicy:ExemptNamespaces NodeAgent:TenantPolicy:RunAsUserAnnotation NodeAgent:TenantPolicy:Interval
      NodeAgent:Remediation:Kubelet:Enabled NodeAgent:Remediation:Kubelet:FailingFor NodeAgent:Remediation:Kubelet:Cooldown
      NodeAgent:Remediation:Docker:Enabled NodeAgent:Remediation:Docker:FailingFor NodeAgent:Remediation:Docker:Cooldown
      Coordinator:Address Coordinator:Addresses Coordinator:Certificate Coordinator:Key Coordinator:CaBundle Coordinator:Node
      Coordinator:CallTimeout Coordinator:InitialInterval
      Metrics:Address Metrics:Port Log:Level Log:Console Log:Syslog:Target Log:Syslog:Facility
    ]
    expect(documented - rendered).to eq([])
  end

  it 'writes log-shipper.json: the shipped example, key by key' do
    json = json_of(SHIPPER)
    example = shipped_example('log-shipper.json.example')
    rendered = leaves(json)
    leaves(example).each do |path, value|
      value = value.map { |d| d.transform_values { |v| v.sub('FQDN', FQDN) } } if path == 'Shipper:Destinations'
      value = value.sub('FQDN', FQDN) if value.is_a?(String)
      expect([path, rendered[path]]).to eq([path, value])
    end
    expect(json['Shipper']['Destinations']).to eq([
      { 'CaBundle' => CA, 'Certificate' => CERT, 'Key' => KEY, 'Url' => 'relp+tls://syslog.example:20514' },
      { 'CaBundle' => CA, 'Certificate' => CERT, 'Key' => KEY, 'Url' => 'tls://syslog.example:6514' },
    ])
    expect(json['Shipper']['RelpWindowMax']).to eq(4096)
    expect(json['Shipper']['IoTimeout']).to eq('00:00:30')
    expect(json['Metrics']).to eq('Address' => '127.0.0.1', 'Port' => 9504)
  end

  context 'with a site\'s hiera changing a few keys' do
    let(:facts) { { 'tfa_case' => 'worker_changed' } }

    it 'changes exactly those keys in node-agent.json' do
      before = json_in_case('none', NODE_AGENT)
      after = json_of(NODE_AGENT)
      # The site wrote a Remediation subsection without Drain and Ladder: those leaves are gone from the file (the
      # subsection is replaced whole, README), not changed — the daemon takes its defaults, the values they had.
      changed = changed_leaves(before, after)
      gone = changed.select { |k| k.start_with?('NodeAgent:Remediation:Drain:', 'NodeAgent:Remediation:Ladder:') }
      expect(gone).not_to be_empty
      expect(gone.select { |k| leaves(after).key?(k) }).to eq([])
      expect(changed - gone).to eq(%w[
        Coordinator:Address Coordinator:Addresses Log:Level NodeAgent:Remediation:Kubelet:Enabled
        NodeAgent:Remediation:Kubelet:FailingFor NodeAgent:Runtime
      ])
      expect(after['Coordinator']['Addresses']).to eq(['https://tools-coordinator-2.tools.eqiad1.wikimedia.cloud:9500'])
      expect(after['NodeAgent']['Remediation']['Kubelet']).to eq('Enabled' => true, 'FailingFor' => '00:10:00', 'Cooldown' => '00:30:00')
    end

    it 'changes exactly those keys in log-shipper.json, the list replaced, not appended to' do
      before = json_in_case('none', SHIPPER)
      after = json_of(SHIPPER)
      expect(changed_leaves(before, after)).to eq(%w[
        Coordinator:Address Coordinator:Addresses Log:Level Shipper:Destinations Shipper:Units
      ])
      expect(after['Shipper']['Units']).to eq(['kubelet.service', 'containerd.service'])
      expect(after['Shipper']['Destinations']).to eq([
        { 'CaBundle' => CA, 'Certificate' => CERT, 'Key' => KEY,
          'Url' => 'relp+tls://tools-syslog-1.tools.eqiad1.wikimedia.cloud:20514',
          'ServerName' => 'tools-syslog.tools.eqiad1.wikimedia.cloud' },
      ])
    end
  end
end
