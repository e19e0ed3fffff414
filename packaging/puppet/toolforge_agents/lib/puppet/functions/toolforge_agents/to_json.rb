# frozen_string_literal: true

require 'json'

# @summary A daemon's configuration as JSON: two-space indents, keys in the order the hash has them, a final newline.
#
# Puppet 7 has no JSON function of its own (to_json_pretty is puppetlabs-stdlib's); this one keeps the module free of
# dependencies. The daemons read the file with comments allowed, but it has none: `jq` and JSON.parse read it too.
Puppet::Functions.create_function(:'toolforge_agents::to_json') do
  # @param data The configuration: hashes, arrays, strings, numbers, booleans.
  # @return [String] The JSON text.
  dispatch :to_json do
    param 'Hash', :data
    return_type 'String'
  end

  def to_json(data)
    # Ruby's json before 2.7 (Debian 12 has 2.6) writes an empty list or object over two or three lines.
    # Inside a JSON string a line break is always escaped, so these patterns only ever match structure.
    text = JSON.pretty_generate(data).gsub(/\[\n\s*\]/, '[]').gsub(/\{\n\s*\}/, '{}')
    "#{text}\n"
  end
end
