require 'spec_helper'

describe 'toolforge_agents' do
  it { is_expected.to compile.with_all_deps }

  it 'manages the configuration directory as systemd\'s ConfigurationDirectory= makes it, and nothing else' do
    is_expected.to contain_file('/etc/toolforge-agents').with(ensure: 'directory', owner: 'root', group: 'root', mode: '0755')
    expect(catalogue.resources.map(&:type).uniq.sort).to eq(%w[Class File Stage])
  end
end

describe 'toolforge_agents::log_shipper' do
  it { is_expected.to compile.with_all_deps }

  it 'runs on its own (a host with neither role) and restarts only the shipper' do
    is_expected.to contain_package('toolforge-log-shipper')
    is_expected.to contain_file(SHIPPER).that_notifies('Service[toolforge-log-shipper]')
    expect([catalogue.resource('File', SHIPPER)[:notify]].flatten.map(&:to_s)).to eq(['Service[toolforge-log-shipper]'])
    is_expected.not_to contain_service('toolforge-node-agent')
  end

  it 'names every key the README documents for the log-shipper' do
    rendered = leaves(json_of(SHIPPER)).keys
    documented = %w[
      Shipper:Destinations Shipper:Units Shipper:Identifiers Shipper:MaxPriority Shipper:Kernel Shipper:StateFile
      Shipper:StartAt Shipper:OnUnknownCursor Shipper:MaxMessageBytes Shipper:RelpWindow Shipper:RelpWindowMax
      Shipper:IoTimeout Shipper:RateLimit:Burst Shipper:RateLimit:Interval
      Coordinator:Address Coordinator:Certificate Coordinator:Key Coordinator:CaBundle Metrics:Port Log:Level
    ]
    expect(documented - rendered).to eq([])
  end
end
