#!/usr/bin/env bash
# toolforge-agents build entry point.
#   ./build.sh build          publish every program into out/bin/ under its installed name
#   ./build.sh test           install the Debian packages and start the real peers the tests need, run every test
#   ./build.sh demo [stop]    dev certificates, a coordinator and the agents of this host, then `agentctl nodes`
#   ./build.sh certs DIR      a throwaway CA with coordinator, node and admin certificates (agentctl pki)
#   ./build.sh bench          the benchmarks under bench/ (figures go into the README)
#   ./build.sh package        the .deb packages into dist/
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
CONFIGURATION=${CONFIGURATION:-Release}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

PROGRAMS=(
  "agents/Coordinator:toolforge-coordinator"
  "agents/NodeAgent:toolforge-node-agent"
  "agents/BuilderAgent:toolforge-builder-agent"
  "agents/LogShipper:toolforge-log-shipper"
  "agents/AgentCtl:agentctl"
)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ Debian packages and real peers
TEST_PACKAGES=(docker.io docker-registry rsyslog rsyslog-relp rsyslog-gnutls systemd-journal-remote iptables iproute2
  debootstrap systemd-container busybox-static python3-jinja2 prometheus dbus openssl debhelper lintian
  fakeroot dpkg-dev)

ensure_packages() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# dockerd with the vfs driver (no systemd here); tests use /var/run/docker.sock.
ensure_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting dockerd (vfs)"
  mkdir -p /var/log/tfa
  nohup dockerd --storage-driver=vfs >/var/log/tfa/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  tail -20 /var/log/tfa/dockerd.log >&2
  die "dockerd did not come up"
}

# A Debian root with systemd for the nspawn tests, made once per machine.
NODE_ROOT=${TFA_NODE_ROOT:-/var/tmp/tfa-node-root}
NODE_ROOT_PACKAGES="ca-certificates libssl3 zlib1g libstdc++6 libgcc-s1 iptables libsystemd0 procps"
ensure_node_root() {
  if [ -x "$NODE_ROOT/lib/systemd/systemd" ]; then
    # Packages the .debs depend on, added to a root made before they were listed.
    if ! chroot "$NODE_ROOT" dpkg -s $NODE_ROOT_PACKAGES >/dev/null 2>&1; then
      log "adding $NODE_ROOT_PACKAGES to $NODE_ROOT"
      cp /etc/resolv.conf "$NODE_ROOT/etc/resolv.conf"
      chroot "$NODE_ROOT" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $NODE_ROOT_PACKAGES" >/var/log/tfa/node-root-apt.log 2>&1 \
        || { tail -20 /var/log/tfa/node-root-apt.log >&2; die "could not add packages to $NODE_ROOT"; }
    fi
    return 0
  fi
  log "debootstrap of a systemd Debian root into $NODE_ROOT (once per machine)"
  rm -rf "$NODE_ROOT.tmp"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,iptables,ca-certificates,libssl3,procps bookworm "$NODE_ROOT.tmp" \
    http://deb.debian.org/debian >/var/log/tfa/debootstrap.log 2>&1 || { tail -20 /var/log/tfa/debootstrap.log >&2; die "debootstrap failed"; }
  mv "$NODE_ROOT.tmp" "$NODE_ROOT"
}

# ------------------------------------------------------------------ build
cmd_build() {
  log "publishing into out/bin ($CONFIGURATION)"
  rm -rf out/bin out/lib
  mkdir -p out/bin out/lib
  for entry in "${PROGRAMS[@]}"; do
    local project=${entry%%:*} name=${entry##*:}
    dotnet publish "$project" -c "$CONFIGURATION" -o "out/lib/$name" --nologo -v quiet -p:UseAppHost=true >/dev/null
    ln -sf "../lib/$name/$name" "out/bin/$name"
  done
  ls out/bin
}

# ------------------------------------------------------------------ test
cmd_test() {
  mkdir -p /var/log/tfa
  if [ "$(id -u)" -eq 0 ]; then
    ensure_packages "${TEST_PACKAGES[@]}"
    ensure_dockerd
    ensure_node_root || log "warning: no systemd root; the nspawn tests will fail"
  else
    log "not root: not installing packages or starting dockerd (peer tests will fail under CI=true)"
  fi
  export TFA_NODE_ROOT=$NODE_ROOT
  # The reference data lives in ../shared beside the checkout; a clone made elsewhere from a local checkout finds it
  # beside the checkout it was cloned from.
  if [ -z "${TFA_SHARED:-}" ] && [ ! -d ../shared ]; then
    local origin; origin=$(git config --get remote.origin.url 2>/dev/null || true)
    if [ -n "$origin" ] && [ -d "$origin/../shared" ]; then export TFA_SHARED; TFA_SHARED=$(cd "$origin/../shared" && pwd); fi
  fi
  log "building"
  dotnet build Agents.sln -c "$CONFIGURATION" --nologo -v quiet >/var/log/tfa/build.log 2>&1 || { grep -E 'error|warn' /var/log/tfa/build.log | sort -u | head -40 >&2; echo "0 passed, 1 failed"; return 1; }
  log "running tests"
  local out=/var/log/tfa/test.log rc
  set +e
  dotnet test Agents.sln -c "$CONFIGURATION" --no-build --nologo --logger "console;verbosity=normal" "$@" 2>&1 \
    | tee "$out" | grep -E '^\s+(Failed|Passed|Skipped) [A-Z]|^(Passed|Failed)!|error'
  rc=${PIPESTATUS[0]}
  set -e
  # Each test project ends with one summary ("Test Run Successful." then "Total tests: 55", "Passed: 55", ...): summed,
  # they count every test case once (the per-test lines of parallel test hosts can interleave on the console).
  local passed failed skipped
  read -r passed failed skipped < <(test_counts "$out")
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    log "dotnet test exited $rc without a failed test (a test host crashed, or a filter matched nothing): counting it as a failure"
    failed=1
  fi
  if [ $((passed + failed + skipped)) -eq 0 ]; then
    log "no test ran"
    failed=1
  fi
  if ! check_leftovers; then failed=$((failed + 1)); fi
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}

# passed failed skipped, summed over the per-project summaries of the test log $1.
test_counts() {
  awk '/^Test Run (Successful|Failed|Aborted)/ { inside = 1; next }
       inside && /^ +Passed: +[0-9]+/ { p += $2 }
       inside && /^ +Failed: +[0-9]+/ { f += $2 }
       inside && /^ +Skipped: +[0-9]+/ { s += $2 }
       inside && /Total time:/ { inside = 0 }
       END { print p + 0, f + 0, s + 0 }' "$1" 2>/dev/null || echo "0 0 0"
}

# Processes the tests started and did not stop: a container shim of a private dockerd or containerd (re-parented to
# PID 1 once its daemon is gone), a private daemon, a booted container. Each is named, killed, and fails the run.
check_leftovers() {
  local pattern='containerd-shim-runc-v2 .*-address /tmp/(dockerd|containerd)-|dockerd .*--data-root /tmp/|containerd --config /tmp/|rsyslogd -n -f /tmp/|systemd-nspawn .*tfa|postgres -D /tmp/|haproxy -f /tmp/|prometheus --config.file=/tmp/|alertmanager --config.file=/tmp/'
  local found; found=$(pgrep -af -- "$pattern" | grep -v -- "pgrep" || true)
  [ -z "$found" ] && return 0
  log "the tests left these running (killed now):"
  printf '%s\n' "$found" >&2
  printf '%s\n' "$found" | awk '{print $1}' | xargs -r kill -9 2>/dev/null || true
  return 1
}

# ------------------------------------------------------------------ certs
cmd_certs() {
  local dir=${1:-}
  [ -n "$dir" ] || die "usage: ./build.sh certs DIR"
  [ -x out/bin/agentctl ] || cmd_build >/dev/null
  out/bin/agentctl pki "$dir" --server-name coordinator "$(hostname -f 2>/dev/null || hostname)" demo-worker-1.toolforge.test admin.toolforge.test viewer.toolforge.test
}

# ------------------------------------------------------------------ demo
DEMO=$ROOT/.demo
demo_stop() {
  if [ -f "$DEMO/pids" ]; then
    while read -r pid name; do
      if kill "$pid" 2>/dev/null; then log "stopped $name ($pid)"; fi
    done <"$DEMO/pids"
    rm -f "$DEMO/pids"
  else
    log "nothing to stop"
  fi
}

cmd_demo() {
  if [ "${1:-}" = stop ]; then demo_stop; return; fi
  demo_stop >/dev/null 2>&1 || true
  cmd_build >/dev/null
  rm -rf "$DEMO" && mkdir -p "$DEMO/certs" "$DEMO/state"
  local node=demo-worker-1.toolforge.test port=${DEMO_PORT:-9500}
  out/bin/agentctl pki "$DEMO/certs" --server-name coordinator $node admin.toolforge.test >/dev/null
  cat >"$DEMO/coordinator.json" <<JSON
{
  "Log": { "Console": "plain" },
  "Metrics": { "Port": 9501 },
  "Coordinator": {
    "ListenAddress": "127.0.0.1", "Port": $port,
    "Certificate": "$DEMO/certs/coordinator.pem", "Key": "$DEMO/certs/coordinator.key", "CaBundle": "$DEMO/certs/ca.pem",
    "Admins": ["admin.toolforge.test"],
    "Builders": ["$node"], "Nodes": ["$node"],
    "Database": "$DEMO/state/coordinator.db",
    "HeartbeatInterval": "00:00:10"
  }
}
JSON
  local reporting="\"Coordinator\": { \"Address\": \"https://127.0.0.1:$port\", \"Certificate\": \"$DEMO/certs/$node.pem\", \"Key\": \"$DEMO/certs/$node.key\", \"CaBundle\": \"$DEMO/certs/ca.pem\" }"
  demo_agent_configs "$reporting" "$node"
  start() { # name args...
    local name=$1; shift
    nohup "out/bin/$name" "$@" >"$DEMO/$name.log" 2>&1 &
    echo "$! $name" >>"$DEMO/pids"
  }
  start toolforge-coordinator --config "$DEMO/coordinator.json"
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  for agent in $(ls "$DEMO"/agent-*.json 2>/dev/null); do
    local name; name=$(basename "$agent" .json); name=${name#agent-}
    start "toolforge-$name" ${DEMO_ARGS[$name]:-} --config "$agent"
  done
  demo_agentctl_config "$port"
  log "waiting for the agents to report"
  local expected; expected=$(ls "$DEMO"/agent-*.json 2>/dev/null | wc -l)
  for _ in $(seq 1 150); do
    local have; have=$(out/bin/agentctl "${AGENTCTL_ARGS[@]}" node $node -o json 2>/dev/null | grep -c '"kind"' || true)
    [ "${have:-0}" -ge "$expected" ] && break
    sleep 0.2
  done
  out/bin/agentctl "${AGENTCTL_ARGS[@]}" nodes
  echo
  echo "Running (logs in .demo/*.log). Try: out/bin/agentctl node $node | out/bin/agentctl watch. Stop with: ./build.sh demo stop"
}

# agentctl's settings for the demo: written to .demo/agentctl.json, and to ~/.config/agentctl/config.json only when that
# file is absent or was written by an earlier demo (an admin's own settings are never replaced).
demo_agentctl_config() {
  local port=$1 user_config=${XDG_CONFIG_HOME:-$HOME/.config}/agentctl/config.json
  cat >"$DEMO/agentctl.json" <<JSON
{
  "server": "https://127.0.0.1:$port",
  "cert": "$DEMO/certs/admin.toolforge.test.pem",
  "key": "$DEMO/certs/admin.toolforge.test.key",
  "ca": "$DEMO/certs/ca.pem"
}
JSON
  if [ ! -e "$user_config" ] || grep -q "\"$DEMO/certs/" "$user_config"; then
    mkdir -p "$(dirname "$user_config")"
    cp "$DEMO/agentctl.json" "$user_config"
  else
    log "kept your $user_config; the demo's agentctl settings are in .demo/agentctl.json (use: out/bin/agentctl --config .demo/agentctl.json ...)"
    AGENTCTL_ARGS=(--config "$DEMO/agentctl.json")
  fi
}
AGENTCTL_ARGS=()

declare -A DEMO_ARGS=([builder-agent]="serve")
# Each agent that can run on this host gets a config reporting as the demo node. This host is no Kubernetes node:
# the node-agent runs with its Kubernetes API side off (those checks say so: "unknown"), kubelet is not
# there (failing), and Docker is checked for real. The builder serves the test fixture repository on the local
# dockerd. The shipper sends the local journal to an rsyslogd the demo starts on 127.0.0.1 (files in .demo/syslog/).
demo_agent_configs() {
  local reporting=$1 node=$2
  cat >"$DEMO/agent-node-agent.json" <<JSON
{ "Log": { "Console": "plain" }, "Metrics": { "Port": 9502 }, $reporting,
  "NodeAgent": { "NodeName": "$node", "StateDirectory": "$DEMO/state/node-agent",
    "Kubernetes": { "Enabled": false },
    "Journal": { "Enabled": false } } }
JSON
  if pgrep -x dockerd >/dev/null && ! ip link show docker0 >/dev/null 2>&1; then
    log "warning: dockerd runs without its docker0 bridge (something deleted it): restart dockerd before building in the demo"
  fi
  # A copy of the fixture image repository with Debian's static busybox as shared/busybox (what its roots COPY).
  cp -r tests/BuilderAgent.Tests/Fixtures/images "$DEMO/images"
  mkdir -p "$DEMO/images/shared"
  if [ -x /bin/busybox ]; then cp /bin/busybox "$DEMO/images/shared/busybox"; else log "no /bin/busybox (busybox-static): demo builds will fail"; fi
  cat >"$DEMO/agent-builder-agent.json" <<JSON
{ "Log": { "Console": "plain" }, "Metrics": { "Port": 9503 }, $reporting,
  "Builder": { "Repository": "$DEMO/images", "Registry": "127.0.0.1:5000", "ImagePrefix": "demo" } }
JSON
  if command -v rsyslogd >/dev/null && [ -f /usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so ]; then
    mkdir -p "$DEMO/syslog"
    cat >"$DEMO/rsyslog.conf" <<CONF
global(workDirectory="$DEMO/syslog")
module(load="imrelp")
main_queue(queue.type="Direct")
template(name="perHost" type="string" string="$DEMO/syslog/%HOSTNAME%/%PROGRAMNAME%.log")
ruleset(name="remote") { action(type="omfile" dynaFile="perHost" createDirs="on") }
input(type="imrelp" address="127.0.0.1" port="9514" ruleset="remote")
CONF
    nohup rsyslogd -n -f "$DEMO/rsyslog.conf" -i "$DEMO/rsyslogd.pid" >"$DEMO/rsyslogd.log" 2>&1 &
    echo "$! rsyslogd" >>"$DEMO/pids"
    cat >"$DEMO/agent-log-shipper.json" <<JSON
{ "Log": { "Console": "plain" }, "Metrics": { "Port": 9504 }, $reporting,
  "Shipper": { "Destinations": [ { "Url": "relp://127.0.0.1:9514" } ], "StateFile": "$DEMO/state/shipper.cursor" } }
JSON
  else
    log "no rsyslogd with imrelp here: the demo runs without the log-shipper"
  fi
}

# ------------------------------------------------------------------ bench, package
cmd_bench() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # the coordinator bench opens one mutual-TLS connection per simulated node
  ensure_packages rsyslog rsyslog-relp systemd-journal-remote iptables docker.io docker-registry busybox-static
  local ran=0
  for b in bench/*/; do
    [ -f "$b"/*.csproj ] 2>/dev/null || continue
    log "bench: $b"
    dotnet run -c Release --project "$b" -- "$@"
    ran=1
  done
  [ $ran -eq 1 ] || log "no benchmarks yet"
}

cmd_package() {
  [ -x packaging/debian/build-debs.sh ] || die "packaging is not written yet (see the packaging issue)"
  ensure_packages debhelper lintian fakeroot dpkg-dev
  packaging/debian/build-debs.sh "$@"
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  test) shift; cmd_test "$@" ;;
  demo) shift; cmd_demo "$@" ;;
  certs) shift; cmd_certs "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  package) shift; cmd_package "$@" ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
