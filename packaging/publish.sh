# Sourced by build.sh and packaging/debian/build-debs.sh: how each program is published, in one place.
# publish_program PROJECT NAME OUTDIR MODE
#   A project with <PublishAot>true</PublishAot> becomes one native executable (NativeAOT, linux-x64), whatever MODE.
#   The others: MODE=framework (needs the .NET runtime; built beforehand, published with --no-build) or
#   MODE=self-contained (the runtime beside the program, as the .debs carry it).
# Needs clang and zlib1g-dev for NativeAOT's link step.
PROGRAMS=(
  "agents/Coordinator:toolforge-coordinator"
  "agents/NodeAgent:toolforge-node-agent"
  "agents/BuilderAgent:toolforge-builder-agent"
  "agents/LogShipper:toolforge-log-shipper"
  "agents/AgentCtl:agentctl"
)
NATIVE_PACKAGES=(clang zlib1g-dev)

is_native_program() { grep -q '<PublishAot>true</PublishAot>' "$1"/*.csproj; }

publish_program() {
  local project=$1 name=$2 out=$3 mode=$4 configuration=${CONFIGURATION:-Release}
  local common=(-c "$configuration" -o "$out" --nologo -v quiet)
  # The packages' version (build-debs.sh) as the programs' own: what --version prints and the agents report.
  [ -z "${INFORMATIONAL_VERSION:-}" ] || common+=("-p:InformationalVersion=$INFORMATIONAL_VERSION")
  if is_native_program "$project"; then
    # Symbols stripped into NAME.dbg beside it (kept out of the .debs); the executable itself stays small.
    dotnet publish "$project" "${common[@]}" -r linux-x64 -p:StripSymbols=true
  elif [ "$mode" = self-contained ]; then
    dotnet publish "$project" "${common[@]}" -r linux-x64 --self-contained true -p:UseAppHost=true -p:DebugType=none
  else
    dotnet publish "$project" "${common[@]}" --no-build -p:UseAppHost=true
  fi
}
