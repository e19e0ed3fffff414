require 'spec_helper'

PROMETHEUS = '/etc/prometheus/prometheus.yml'.freeze
RULES = '/etc/prometheus/toolforge-agents.rules.yml'.freeze

describe 'toolforge_agents::monitoring' do
  it { is_expected.to compile.with_all_deps }

  it 'ships the alert rules as they are and reloads only Prometheus on a change' do
    is_expected.to contain_file(RULES).with(owner: 'root', group: 'root', mode: '0644').that_notifies('Service[prometheus]')
    expect(content_of(RULES)).to eq(File.read(File.join(REPO_ROOT, 'packaging/prometheus/toolforge-agents.rules.yml')))
    is_expected.to contain_file(PROMETHEUS).with(owner: 'root', group: 'root', mode: '0644').that_notifies('Service[prometheus]')
    is_expected.to contain_file(PROMETHEUS).that_requires("File[#{RULES}]")
    is_expected.to contain_service('prometheus').with(restart: '/bin/systemctl reload prometheus')
  end

  it 'scrapes every daemon as the shipped scrape example does, and evaluates the rules' do
    text = content_of(PROMETHEUS)
    example = File.read(File.join(REPO_ROOT, 'packaging/prometheus/scrape-config.example.yml'))
    expect(text).to end_with(example)
    config = YAML.safe_load(text)
    expect(config['rule_files']).to eq([RULES])
    expect(config['alerting']['alertmanagers']).to eq([{ 'static_configs' => [{ 'targets' => ['127.0.0.1:9093'] }] }])
    job = config['scrape_configs'].first
    expect(job['job_name']).to eq('toolforge-agents')
    expect(job['static_configs'].map { |s| [s['labels']['daemon'], s['targets']] }).to eq([
      ['coordinator', ['coordinator.example:9501']],
      ['node-agent', ['worker-1.example:9502', 'worker-2.example:9502']],
      ['builder-agent', ['builder.example:9503']],
      ['log-shipper', ['worker-1.example:9504', 'worker-2.example:9504']],
    ])
  end

  context 'with no builder' do
    let(:params) { { 'builder_agents' => [] } }

    it 'leaves that daemon out, nothing else' do
      job = YAML.safe_load(content_of(PROMETHEUS))['scrape_configs'].first
      expect(job['static_configs'].map { |s| s['labels']['daemon'] }).to eq(%w[coordinator node-agent log-shipper])
    end
  end
end
