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

# PROGRAMS (project:installed name) and how each is published; NATIVE_PACKAGES, what NativeAOT links with.
. packaging/publish.sh

log() { printf '==> %s\n' "$*" >&2; }
# Build and test logs: /var/log/tfa when we may write there, else out/log.
if mkdir -p /var/log/tfa 2>/dev/null && [ -w /var/log/tfa ]; then LOGS=/var/log/tfa; else LOGS=$ROOT/out/log; mkdir -p "$LOGS"; fi
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ Debian packages and real peers
TEST_PACKAGES=(docker.io docker-registry skopeo containerd runc containernetworking-plugins rsyslog rsyslog-relp rsyslog-gnutls systemd-journal-remote iptables nftables conntrack iproute2
  debootstrap systemd-container busybox-static python3-jinja2 prometheus dbus openssl debhelper lintian clang zlib1g-dev
  fakeroot dpkg-dev prometheus-alertmanager haproxy postgresql-15 tmux man-db puppet puppet-lint ruby-rspec-puppet
  sshfs openssh-sftp-server zsh fish)

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
# Sets STARTED_DOCKERD to the PID of the dockerd it started (empty when one was already running).
STARTED_DOCKERD=
ensure_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting dockerd (vfs)"
  nohup dockerd --storage-driver=vfs >$LOGS/dockerd.log 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  tail -20 $LOGS/dockerd.log >&2
  die "dockerd did not come up"
}

# A Debian root with systemd for the nspawn tests, made once per machine.
NODE_ROOT=${TFA_NODE_ROOT:-/var/tmp/tfa-node-root}
# puppet, nftables, conntrack, fuse3, rsyslog: Packaging.Tests/DeployTests applies the puppet module in the container
# (no network there: what the roles install must already be in the root) and runs the audits and a FUSE mount.
NODE_ROOT_PACKAGES="ca-certificates libssl3 zlib1g libstdc++6 libgcc-s1 iptables libsystemd0 procps puppet nftables conntrack fuse3 rsyslog rsyslog-relp rsyslog-gnutls"
ensure_node_root() {
  if [ ! -x "$NODE_ROOT/lib/systemd/systemd" ]; then
    log "debootstrap of a systemd Debian root into $NODE_ROOT (once per machine)"
    rm -rf "$NODE_ROOT.tmp"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,iptables,ca-certificates,libssl3,procps bookworm "$NODE_ROOT.tmp" \
      http://deb.debian.org/debian >$LOGS/debootstrap.log 2>&1 || { tail -20 $LOGS/debootstrap.log >&2; die "debootstrap failed"; }
    mv "$NODE_ROOT.tmp" "$NODE_ROOT"
  fi
  # Packages the .debs and the deploy tests need (puppet among them), added to a new root as to one made before they
  # were listed (a fresh root used to get only debootstrap's: the deploy tests then failed on "invalid user 'puppet'").
  if ! chroot "$NODE_ROOT" dpkg -s $NODE_ROOT_PACKAGES >/dev/null 2>&1; then
    log "adding $NODE_ROOT_PACKAGES to $NODE_ROOT"
    cp /etc/resolv.conf "$NODE_ROOT/etc/resolv.conf"
    chroot "$NODE_ROOT" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $NODE_ROOT_PACKAGES" >$LOGS/node-root-apt.log 2>&1 \
      || { tail -20 $LOGS/node-root-apt.log >&2; die "could not add packages to $NODE_ROOT"; }
  fi
}

# ------------------------------------------------------------------ build
cmd_build() {
  log "building and publishing into out/bin ($CONFIGURATION)"
  # NativeAOT links with clang.
  if [ "$(id -u)" -eq 0 ]; then ensure_packages "${NATIVE_PACKAGES[@]}"; else command -v clang >/dev/null || die "NativeAOT needs clang and zlib1g-dev (apt-get install ${NATIVE_PACKAGES[*]})"; fi
  # One parallel build of the five programs (Programs.slnf), then each published from it without building again.
  dotnet build Programs.slnf -c "$CONFIGURATION" --nologo -v quiet -p:UseAppHost=true >$LOGS/programs-build.log 2>&1 \
    || { grep -E 'error' $LOGS/programs-build.log | sort -u | head -20 >&2; die "build failed (log: $LOGS/programs-build.log)"; }
  rm -rf out/bin out/lib
  mkdir -p out/bin out/lib
  for entry in "${PROGRAMS[@]}"; do
    local project=${entry%%:*} name=${entry##*:}
    is_native_program "$project" && log "publishing $name (NativeAOT)"
    publish_program "$project" "$name" "out/lib/$name" framework >>$LOGS/programs-build.log 2>&1 \
      || { grep -E 'error' $LOGS/programs-build.log | sort -u | head -20 >&2; die "publishing $name failed (log: $LOGS/programs-build.log)"; }
    ln -sf "../lib/$name/$name" "out/bin/$name"
  done
  ls out/bin
}

# ------------------------------------------------------------------ test
cmd_test() {
  mkdir -p $LOGS
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
  dotnet build Agents.sln -c "$CONFIGURATION" --nologo -v quiet >$LOGS/build.log 2>&1 || { grep -E 'error|warn' $LOGS/build.log | sort -u | head -40 >&2; echo "0 passed, 1 failed"; return 1; }
  log "running tests"
  local p name
  for p in tests/*.Tests/*.Tests.csproj; do
    name=$(basename "$p" .csproj)
    [ "$name" = Packaging.Tests ] || grep -q "\\\\$name.csproj" Tests.slnf || die "$p is in no test phase: add it to Tests.slnf"
  done
  local out=$LOGS/test.log rc rc2
  TEST_RUN_ID=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  # Two phases: the test projects of Tests.slnf in parallel, then Packaging.Tests alone. The packaging and demo tests
  # NativeAOT-compile the five programs (minutes of both cores); run beside them, the latency tests of the coordinator
  # cluster (a report seen on another instance within a second) measured the compiler, not the coordinator.
  set +e
  TFA_TEST_RUN=$TEST_RUN_ID dotnet test Tests.slnf -c "$CONFIGURATION" --no-build --nologo --logger "console;verbosity=normal" "$@" 2>&1 \
    | tee "$out" | grep -E '^\s+(Failed|Passed|Skipped) [A-Z]|^(Passed|Failed)!|error'
  rc=${PIPESTATUS[0]}
  TFA_TEST_RUN=$TEST_RUN_ID dotnet test tests/Packaging.Tests/Packaging.Tests.csproj -c "$CONFIGURATION" --no-build --nologo --logger "console;verbosity=normal" "$@" 2>&1 \
    | tee -a "$out" | grep -E '^\s+(Failed|Passed|Skipped) [A-Z]|^(Passed|Failed)!|error'
  rc2=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] || rc=$rc2
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
  # The failed tests again, with their first message line, just above the count: whoever sees only the end of the
  # output (a CI summary) still sees which test failed and why.
  if [ "$failed" -gt 0 ]; then
    awk '/^ +Failed [A-Z][A-Za-z0-9_.]+/ { name = $2; want = 1; next }
         want && /^ +Error Message:/ { getline m; sub(/^ +/, "", m); print "FAILED " name ": " substr(m, 1, 300); want = 0 }' "$out" | head -20 >&2
  fi
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
# PID 1 once its daemon is gone), a private daemon, a booted container. They are found by the marker this run put in
# the environment of `dotnet test` (TFA_TEST_RUN, inherited by every process a test starts), never by name: a
# process of the same name that this run did not start (another checkout's tests, the host's own rsyslogd) is not
# touched. Each one found is named, killed by its pid, and fails the run. The .NET build servers a packaging test's
# `dotnet publish` leaves (MSBuild nodes, VBCSCompiler) are ours too but expected: they end on their own idle timeout.
TEST_RUN_ID=
check_leftovers() {
  [ -n "$TEST_RUN_ID" ] || return 0
  local found="" env pid cmd
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}; pid=${pid%/environ}
    [ "$pid" = "$$" ] && continue
    { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -qxF "TFA_TEST_RUN=$TEST_RUN_ID" || continue
    cmd=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null || true)
    [ -n "$cmd" ] || continue
    case "$cmd" in *MSBuild.dll*nodemode*|*VBCSCompiler.dll*|*dotnet*build-server*) continue ;; esac
    found+="$pid $cmd"$'\n'
  done
  [ -z "$found" ] && return 0
  log "the tests left these running (killed now):"
  printf '%s' "$found" >&2
  printf '%s' "$found" | awk '{print $1}' | xargs -r kill -9 2>/dev/null || true
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
# The product on one host, against real peers, without pretending the host is a Kubernetes node:
#   node-agent  audits a simulated worker: a network namespace holding kube-proxy's rules for demo/cluster.json's
#               Services (one Service's rule missing), reads its Services from that snapshot (Kubernetes:Source file),
#               and runs its journal rules on a journal file with an OOM kill and a hung task;
#   builder     builds the test fixture tree on the local dockerd when the demo runs `agentctl build base-a`;
#   shipper     ships this host's journal (or the demo journal when the host has none) over RELP with TLS to an
#               rsyslogd running the receiver configuration this project ships (files in .demo/syslog/).
# Ports: DEMO_PORT (9500) for the coordinator, the next four for the daemons' /metrics, DEMO_PORT+14 for RELP/TLS.
DEMO=$ROOT/.demo
DEMO_NODE=demo-worker-1.toolforge.test
DEMO_NETNS=${DEMO_NETNS:-tfa-demo-worker}
DEMO_PACKAGES=(docker.io rsyslog rsyslog-relp rsyslog-gnutls systemd-journal-remote iptables iproute2 busybox-static)

demo_stop() {
  local stopped=0
  if [ -f "$DEMO/pids" ]; then
    while read -r pid name; do
      if kill "$pid" 2>/dev/null; then
        log "stopped $name ($pid)"; stopped=1
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    done <"$DEMO/pids"
    rm -f "$DEMO/pids"
  fi
  if ip netns list 2>/dev/null | grep -qw "$DEMO_NETNS"; then
    ip netns del "$DEMO_NETNS" && log "deleted network namespace $DEMO_NETNS"; stopped=1
  fi
  [ $stopped -eq 1 ] || log "nothing to stop"
}

demo_start() { # name args... (a program of out/bin, its output in .demo/NAME.log)
  local name=$1; shift
  # A session of its own (a closed terminal does not end it), SIGHUP left at its default: under nohup the
  # coordinator's reload (SIGHUP) would do nothing (.NET keeps an inherited SIG_IGN). Not a group leader here, so
  # setsid execs in place and $! is the program's pid.
  setsid "out/bin/$name" "$@" >"$DEMO/$name.log" 2>&1 &
  echo "$! $name" >>"$DEMO/pids"
}

demo_wait() { # seconds description command...
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "gave up waiting for $what after ${seconds}s"; return 1; }
    sleep 0.5
  done
}

demo_agentctl() { out/bin/agentctl "${AGENTCTL_ARGS[@]}" "$@"; }

cmd_demo() {
  if [ "${1:-}" = stop ]; then demo_stop; return; fi
  [ "$(id -u)" -eq 0 ] || die "the demo needs root (a network namespace with iptables, dockerd); run it as root on a build machine"
  local started=$SECONDS port=${DEMO_PORT:-9500}
  DEMO_RELP=$((port + 14))
  demo_stop >/dev/null 2>&1 || true
  ensure_packages "${DEMO_PACKAGES[@]}"
  rm -rf "$DEMO" && mkdir -p "$DEMO/certs" "$DEMO/state" "$DEMO/syslog" "$DEMO/journal"
  ensure_dockerd
  [ -z "$STARTED_DOCKERD" ] || echo "$STARTED_DOCKERD dockerd" >>"$DEMO/pids"
  cmd_build >/dev/null
  out/bin/agentctl pki "$DEMO/certs" --server-name coordinator --server-name syslog.demo "$DEMO_NODE" admin.toolforge.test >/dev/null

  demo_worker
  demo_journal
  demo_receiver
  demo_configs "$port"
  demo_start toolforge-coordinator --config "$DEMO/coordinator.json"
  demo_wait 30 "the coordinator" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
  demo_start toolforge-node-agent --config "$DEMO/node-agent.json"
  demo_start toolforge-builder-agent serve --config "$DEMO/builder-agent.json"
  demo_start toolforge-log-shipper --config "$DEMO/log-shipper.json"
  demo_agentctl_config "$port"

  log "waiting for the node-agent, the builder and the shipper to report"
  demo_wait 60 "all three agents" bash -c "[ \$(out/bin/agentctl ${AGENTCTL_ARGS[*]} nodes -o json | grep -cE '\"kind\": \"(node-agent|builder-agent|log-shipper)\"') -ge 3 ]"
  log "asking the builder for base-a (agentctl build base-a)"
  local build; build=$(demo_agentctl build base-a -o json | sed -n 's/.*"id": *"\([0-9]*\)".*/\1/p' | head -1)
  demo_wait 180 "build $build" bash -c "out/bin/agentctl ${AGENTCTL_ARGS[*]} builds -o json | grep -A20 '\"id\": \"$build\"' | grep -qE '\"state\": \"(succeeded|failed)\"'"
  log "waiting for the audit of the simulated worker"
  demo_wait 60 "the missing-rule finding" bash -c "out/bin/agentctl ${AGENTCTL_ARGS[*]} findings --kind missing-rule -o json | grep -q missing-rule"
  demo_wait 30 "a shipped line" bash -c "cat $DEMO/syslog/*/*.log | grep -q ."

  echo
  demo_agentctl nodes
  echo
  demo_agentctl findings
  echo
  demo_agentctl builds --limit 1
  echo
  echo "Last lines the central rsyslogd wrote (.demo/syslog/<sender>/<program>.log):"
  tail -q -n 2 "$DEMO"/syslog/*/*.log | cut -c1-160 | tail -n 6
  echo
  local ctl="out/bin/agentctl${AGENTCTL_ARGS[*]:+ ${AGENTCTL_ARGS[*]}}"
  echo "Demo up in $((SECONDS - started))s; logs in .demo/*.log. Try: $ctl node $DEMO_NODE, $ctl watch,"
  echo "$ctl build-log $build. Stop everything with: ./build.sh demo stop"
}

# The simulated worker: a network namespace holding what kube-proxy would have written for demo/cluster.json,
# but for tool-b/api's rule.
demo_worker() {
  ip netns add "$DEMO_NETNS"
  ip -n "$DEMO_NETNS" link set lo up
  ip netns exec "$DEMO_NETNS" iptables-restore <demo/kube-proxy.rules
  cp demo/cluster.json "$DEMO/cluster.json"
}

# A journal file of the simulated worker: kubelet chatter, an OOM kill and a hung task, a few minutes old.
demo_journal() {
  local now; now=$(date +%s%6N)
  {
    demo_entry $((now - 300000000)) 6 kubelet "I1201 Started kubelet" kubelet.service
    demo_entry $((now - 240000000)) 3 kernel "Memory cgroup out of memory: Killed process 4242 (python3) total-vm:1048576kB, anon-rss:524288kB"
    demo_entry $((now - 180000000)) 3 kernel "INFO: task jbd2/sda1-8:301 blocked for more than 120 seconds."
    demo_entry $((now - 120000000)) 6 kubelet "I1201 SyncLoop (PLEG): event for pod tool-a/web-6d4cf56db6-xk2lp" kubelet.service
  } | /lib/systemd/systemd-journal-remote -o "$DEMO/journal/demo-worker.journal" - 2>"$DEMO/journal-remote.log"
}

demo_entry() { # micros priority identifier message [unit]
  printf '__REALTIME_TIMESTAMP=%s\n_HOSTNAME=demo-worker-1\nSYSLOG_IDENTIFIER=%s\nPRIORITY=%s\nMESSAGE=%s\n' "$1" "$3" "$2" "$4"
  if [ -n "${5:-}" ]; then printf '_SYSTEMD_UNIT=%s\n_TRANSPORT=journal\n' "$5"; else printf '_TRANSPORT=kernel\n'; fi
  printf '\n'
}

# rsyslogd on the receiver configuration this project ships, with the demo's certificates, on 127.0.0.1.
demo_receiver() {
  sed -e "s|/srv/syslog|$DEMO/syslog|" \
      -e "s|/var/lib/puppet/ssl/certs/ca.pem|$DEMO/certs/ca.pem|g" \
      -e "s|/var/lib/puppet/ssl/certs/syslog.example.pem|$DEMO/certs/syslog.demo.pem|g" \
      -e "s|/var/lib/puppet/ssl/private_keys/syslog.example.pem|$DEMO/certs/syslog.demo.key|g" \
      -e "s|\"\\*.tools.eqiad1.wikimedia.cloud\"|\"*.toolforge.test\"|g" \
      -e "s|net.enableDNS=\"on\"|net.enableDNS=\"off\" workDirectory=\"$DEMO/syslog\"|" \
      -e "s|address=\"0.0.0.0\"|address=\"127.0.0.1\"|g" \
      -e "s|port=\"20514\"|port=\"$DEMO_RELP\"|" -e "s|port=\"6514\"|port=\"$((DEMO_RELP + 1))\"|" \
      packaging/rsyslog/toolforge-receiver.conf >"$DEMO/rsyslog.conf"
  nohup rsyslogd -n -f "$DEMO/rsyslog.conf" -i "$DEMO/rsyslogd.pid" >"$DEMO/rsyslogd.log" 2>&1 &
  echo "$! rsyslogd" >>"$DEMO/pids"
  demo_wait 15 "rsyslogd" bash -c "exec 3<>/dev/tcp/127.0.0.1/$DEMO_RELP"
}

demo_configs() {
  local port=$1 certs=$DEMO/certs
  local reporting="\"Coordinator\": { \"Address\": \"https://127.0.0.1:$port\", \"Certificate\": \"$certs/$DEMO_NODE.pem\", \"Key\": \"$certs/$DEMO_NODE.key\", \"CaBundle\": \"$certs/ca.pem\" }"
  cat >"$DEMO/coordinator.json" <<JSON
{ "Log": { "Console": "plain" }, "Metrics": { "Port": $((port + 1)) },
  "Coordinator": { "ListenAddress": "127.0.0.1", "Port": $port,
    "Certificate": "$certs/coordinator.pem", "Key": "$certs/coordinator.key", "CaBundle": "$certs/ca.pem",
    "Admins": ["admin.toolforge.test"], "Builders": ["$DEMO_NODE"], "Nodes": ["*.toolforge.test"],
    "Database": "$DEMO/state/coordinator.db", "HeartbeatInterval": "00:00:10" } }
JSON
  cat >"$DEMO/node-agent.json" <<JSON
{ "Log": { "Console": "plain" }, "Metrics": { "Port": $((port + 2)) }, $reporting,
  "NodeAgent": { "NodeName": "$DEMO_NODE", "StateDirectory": "$DEMO/state/node-agent",
    "Kubernetes": { "Source": "file", "File": "$DEMO/cluster.json", "FileInterval": "00:00:02" },
    "Iptables": { "Command": "ip", "Arguments": ["netns", "exec", "$DEMO_NETNS", "iptables-save"], "Interval": "00:00:03" },
    "Journal": { "Files": ["$DEMO/journal/demo-worker.journal"], "EvaluateInterval": "00:00:02" } } }
JSON
  # A copy of the fixture image repository with Debian's static busybox as shared/busybox (what its roots COPY).
  cp -r tests/BuilderAgent.Tests/Fixtures/images "$DEMO/images"
  mkdir -p "$DEMO/images/shared" && cp /bin/busybox "$DEMO/images/shared/busybox"
  cat >"$DEMO/builder-agent.json" <<JSON
{ "Log": { "Console": "plain" }, "Metrics": { "Port": $((port + 3)) }, $reporting,
  "Builder": { "Repository": "$DEMO/images", "Registry": "127.0.0.1:5000", "ImagePrefix": "demo" } }
JSON
  # This host's journal when it has one; else the simulated worker's.
  local journal=""
  if ! ls /var/log/journal/*/*.journal /run/log/journal/*/*.journal >/dev/null 2>&1; then
    journal="\"JournalFiles\": [\"$DEMO/journal/demo-worker.journal\"], \"StartAt\": \"head\","
  fi
  cat >"$DEMO/log-shipper.json" <<JSON
{ "Log": { "Console": "plain" }, "Metrics": { "Port": $((port + 4)) }, $reporting,
  "Shipper": { $journal "StateFile": "$DEMO/state/shipper.cursor",
    "Destinations": [ { "Url": "relp+tls://127.0.0.1:$DEMO_RELP", "ServerName": "syslog.demo", "CaBundle": "$certs/ca.pem",
      "Certificate": "$certs/$DEMO_NODE.pem", "Key": "$certs/$DEMO_NODE.key" } ] } }
JSON
}

# agentctl's settings for the demo: written to .demo/agentctl.json, and to ~/.config/agentctl/config.json only when that
# file is absent or was written by an earlier demo (an admin's own settings are never replaced).
AGENTCTL_ARGS=()
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
    log "kept your $user_config; the demo's agentctl settings are in .demo/agentctl.json"
    AGENTCTL_ARGS=(--config "$DEMO/agentctl.json")
  fi
}

# ------------------------------------------------------------------ bench, package
cmd_bench() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # the coordinator bench opens one mutual-TLS connection per simulated node
  # kubectl (the agentctl bench's peer): Debian's kubernetes-client, unless a kubectl from another package is installed
  # (the two packages conflict over /usr/bin/kubectl).
  local kubectl_pkg=kubernetes-client
  command -v kubectl >/dev/null 2>&1 && kubectl_pkg=
  ensure_packages rsyslog rsyslog-relp systemd-journal-remote iptables nftables docker.io docker-registry skopeo busybox-static postgresql-15 haproxy \
    $kubectl_pkg "${NATIVE_PACKAGES[@]}"
  # The benchmarks that run programs as processes run the binaries of out/bin, as built from this tree.
  cmd_build >/dev/null
  local ran=0
  for b in bench/*/; do
    [ -f "$b"/*.csproj ] 2>/dev/null || continue
    log "bench: $b"
    # the latest output of each benchmark is kept next to it (bench/*/last-run.txt)
    dotnet run -c Release --project "$b" -- "$@" 2>&1 | tee "$b/last-run.txt.new"
    mv "$b/last-run.txt.new" "$b/last-run.txt"
    ran=1
  done
  [ $ran -eq 1 ] || log "no benchmarks yet"
}

cmd_package() {
  [ -x packaging/debian/build-debs.sh ] || die "packaging is not written yet (see the packaging issue)"
  ensure_packages debhelper lintian fakeroot dpkg-dev "${NATIVE_PACKAGES[@]}"
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
