# Not a unit test (its name does not end in _spec.rb, so `rspec spec` leaves it out): the daemons' test projects run
#   TFA_PUPPET_RENDER_DIR=DIR rspec spec/render/render_configs.rb
# (tests/TestSupport/PuppetModule.cs) to get every file the role classes write, as puppet renders it from the real
# manifests, templates and hiera data, in DIR/<case>/<file name>, and bind each daemon's JSON through its own wiring.
require_relative '../spec_helper'
require 'fileutils'

OUT = ENV.fetch('TFA_PUPPET_RENDER_DIR')

# case => [class, hiera case (spec/fixtures/hiera/<case>.yaml; 'none': module data only)]
RENDER_CASES = {
  'worker' => ['toolforge_agents::worker', 'none'],
  'worker_changed' => ['toolforge_agents::worker', 'worker_changed'],
  'builder' => ['toolforge_agents::builder', 'none'],
  'builder_changed' => ['toolforge_agents::builder', 'builder_changed'],
  'control' => ['toolforge_agents::control', 'none'],
  'control_postgresql' => ['toolforge_agents::control', 'control_postgresql'],
  'syslog' => ['toolforge_agents::syslog', 'none'],
  'monitoring' => ['toolforge_agents::monitoring', 'none'],
}.freeze

RENDER_CASES.each do |name, (klass, tfa_case)|
  describe klass, type: :class do
    let(:facts) { { 'tfa_case' => tfa_case } }

    it "writes every file it manages (case #{name})" do
      dir = File.join(OUT, name)
      FileUtils.mkdir_p(dir)
      written = catalogue.resources.select { |r| r.type == 'File' && !r[:content].nil? }.map do |r|
        content = r[:content].respond_to?(:unwrap) ? r[:content].unwrap : r[:content]
        File.write(File.join(dir, File.basename(r.title)), content)
        File.basename(r.title)
      end
      expect(written).not_to be_empty
    end
  end
end
