# rspec-puppet (Debian's ruby-rspec-puppet) against this module as it is in the repository: the module path is the
# directory holding it, and a global hiera layer (spec/fixtures/hiera) stands for a site's own hiera: it is empty
# unless a test sets the fact tfa_case, which selects spec/fixtures/hiera/<case>.yaml.
require 'json'
require 'yaml'
require 'rspec-puppet'

MODULE_ROOT = File.expand_path('..', __dir__)
REPO_ROOT = File.expand_path('../../../..', __dir__)
FIXTURES = File.join(MODULE_ROOT, 'spec', 'fixtures')

# The host the tests compile for, and its puppet files.
FQDN = 'tools-k8s-worker-1.tools.eqiad1.wikimedia.cloud'.freeze
CERT = "/var/lib/puppet/ssl/certs/#{FQDN}.pem".freeze
KEY = "/var/lib/puppet/ssl/private_keys/#{FQDN}.pem".freeze
CA = '/var/lib/puppet/ssl/certs/ca.pem'.freeze
NODE_AGENT = '/etc/toolforge-agents/node-agent.json'.freeze
SHIPPER = '/etc/toolforge-agents/log-shipper.json'.freeze
BUILDER = '/etc/toolforge-agents/builder-agent.json'.freeze
COORDINATOR = '/etc/toolforge-agents/coordinator.json'.freeze

RSpec.configure do |c|
  c.setup_fixtures = false # nothing is linked or written into the repository
  c.module_path = File.dirname(MODULE_ROOT)
  c.manifest = File.join(FIXTURES, 'site.pp')
  c.hiera_config = File.join(FIXTURES, 'hiera', 'hiera.yaml')
  c.strict_variables = true
  c.default_facts = {
    'networking' => { 'fqdn' => 'tools-k8s-worker-1.tools.eqiad1.wikimedia.cloud', 'hostname' => 'tools-k8s-worker-1' },
    'os' => { 'family' => 'Debian', 'name' => 'Debian', 'release' => { 'major' => '12' } },
    'tfa_case' => 'none',
  }
end

module ToolforgeAgentsSpec
  # The content puppet would write to path (a Sensitive value unwrapped).
  def content_of(path)
    resource = catalogue.resource('File', path)
    raise "no File[#{path}] in the catalogue" if resource.nil?
    value = resource[:content]
    value.respond_to?(:unwrap) ? value.unwrap : value
  end

  def json_of(path)
    JSON.parse(content_of(path))
  end

  # The same class compiled again with the site's hiera case tfa_case ('none': module data only): a second
  # rendering to compare with this example's own.
  def json_in_case(tfa_case, path)
    saved = method(:facts) if respond_to?(:facts)
    define_singleton_method(:facts) { { 'tfa_case' => tfa_case } }
    value = load_catalogue(:class).resource('File', path)[:content]
    JSON.parse(value.respond_to?(:unwrap) ? value.unwrap : value)
  ensure
    if saved
      define_singleton_method(:facts, saved)
    else
      singleton_class.send(:remove_method, :facts)
    end
  end

  # The shipped example (comments allowed, as the daemons read it) as a Ruby hash.
  def shipped_example(name)
    text = File.read(File.join(REPO_ROOT, 'packaging', 'config', name))
    JSON.parse(strip_comments(text))
  end

  # Leaves of a nested hash as 'A:B:C' => value (lists are leaves).
  def leaves(hash, prefix = nil)
    hash.each_with_object({}) do |(k, v), out|
      path = prefix ? "#{prefix}:#{k}" : k
      if v.is_a?(Hash) && !v.empty?
        out.merge!(leaves(v, path))
      else
        out[path] = v
      end
    end
  end

  # Every leaf whose value differs between two renderings (added and removed keys too).
  def changed_leaves(before, after)
    a = leaves(before)
    b = leaves(after)
    (a.keys | b.keys).reject { |k| a[k] == b[k] }.sort
  end

  private

  # Removes // comments outside strings.
  def strip_comments(text)
    out = +''
    in_string = false
    escaped = false
    i = 0
    while i < text.length
      ch = text[i]
      if in_string
        out << ch
        if escaped
          escaped = false
        elsif ch == '\\'
          escaped = true
        elsif ch == '"'
          in_string = false
        end
      elsif ch == '"'
        in_string = true
        out << ch
      elsif ch == '/' && text[i + 1] == '/'
        i += 1 while i < text.length && text[i] != "\n"
        next
      else
        out << ch
      end
      i += 1
    end
    out
  end
end

RSpec.configure { |c| c.include ToolforgeAgentsSpec }
