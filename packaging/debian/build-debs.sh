#!/usr/bin/env bash
# Builds the five .debs into dist/: NativeAOT executables, or self-contained .NET publishes (no runtime on the
# nodes either way; packaging/publish.sh says which), then debhelper.
set -euo pipefail
cd "$(dirname "$0")/../.."
. packaging/publish.sh
ROOT=$(pwd)
PREFIX=$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' Directory.Build.props)
# The packages' version: TFA_VERSION when given, else PREFIX+gitN.SHA (N: commits reachable from HEAD, SHA: its
# short id), so apt upgrades a host to a later commit's packages: N grows along a branch, and dpkg orders
# 0.1.0 < 0.1.0+git5.x < 0.1.0+git12.y (`dpkg --compare-versions`). Outside git: PREFIX. The programs print the same
# version (`--version`, agentctl node's agents): it is their InformationalVersion.
# Never quietly: a shallow clone's count is too small (apt would keep a deployed package of a later count) and a
# checkout git cannot read (dubious ownership, git missing) falls back to PREFIX, lower than every numbered build;
# both are said loudly, so packages meant for hosts are built from a full clone (or with TFA_VERSION). A tree with
# uncommitted changes is marked so (.dirty): not the commit's packages.
if [ -n "${TFA_VERSION:-}" ]; then
  VERSION=$TFA_VERSION
elif count=$(git rev-list --count HEAD 2>/dev/null) && sha=$(git rev-parse --short=7 HEAD 2>/dev/null); then
  VERSION=$PREFIX+git$count.$sha
  [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" != true ] \
    || echo "WARNING: a shallow clone: $VERSION counts only the commits fetched; do not install these packages on hosts (git fetch --unshallow, or set TFA_VERSION)" >&2
  [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || VERSION=$VERSION.dirty
else
  VERSION=$PREFIX
  [ ! -e .git ] || echo "WARNING: git cannot read this checkout (ownership? git missing?): version $VERSION, lower than every numbered build; set TFA_VERSION for packages meant for hosts" >&2
fi
[ ${#VERSION} -le 64 ] || { echo "version longer than the 64 characters an agent may report: $VERSION" >&2; exit 1; }
dpkg --validate-version "$VERSION" || { echo "not a Debian version: $VERSION" >&2; exit 1; }
case $VERSION in *-*) echo "a native package's version has no '-' (Debian revision): $VERSION" >&2; exit 1 ;; esac
export INFORMATIONAL_VERSION=$VERSION
STAGE=$ROOT/dist/build/toolforge-agents-$VERSION
# The .debs of an earlier version go: dist/ holds one set, the one just built.
rm -rf "$ROOT/dist/build" "$ROOT"/dist/*.deb && mkdir -p "$STAGE/payload" "$ROOT/dist"
cp -r packaging/debian "$STAGE/debian"
cp -r packaging/config "$STAGE/config"
for u in coordinator node-agent builder-agent log-shipper; do cp "systemd/toolforge-$u.service" "$STAGE/debian/toolforge-$u.service"; done
cat >"$STAGE/debian/changelog" <<CHANGELOG
toolforge-agents ($VERSION) bookworm; urgency=medium

  * Release $VERSION: VersionPrefix of Directory.Build.props,
    then +gitN.SHA (N commits up to SHA, the commit built).

 -- Toolforge admins <cloud-admin@lists.wikimedia.org>  $(date -R)
CHANGELOG
# The Debian package a program is in: toolforge-NAME, and agentctl's own.
package_of() { case "$1" in agentctl) echo toolforge-agentctl ;; *) echo "$1" ;; esac; }
for entry in "${PROGRAMS[@]}"; do
  project=${entry%%:*} name=${entry##*:}
  if is_native_program "$project"; then kind="NativeAOT"; else kind="self-contained"; fi
  echo "==> publishing $name ($kind linux-x64)" >&2
  CONFIGURATION=Release publish_program "$project" "$name" "$STAGE/payload/$name" self-contained >/dev/null
  rm -f "$STAGE/payload/$name"/*.dbg "$STAGE/payload/$name"/*.pdb # NativeAOT's stripped symbols and the referenced projects' pdbs: not shipped
  # Its manual page, made by the program from the same command definitions as its --help (dh_installman installs it).
  mkdir -p "$STAGE/man"
  "$STAGE/payload/$name/$name" man >"$STAGE/man/$name.1" || { echo "$name man failed" >&2; exit 1; }
  echo "man/$name.1" >"$STAGE/debian/$(package_of "$name").manpages"
done
# Managed assemblies and data are not executables; the native SQLite library is stripped like any Debian library.
find "$STAGE/payload" -type f \( -name '*.dll' -o -name '*.json' -o -name '*.pdb' \) -exec chmod 0644 {} +
find "$STAGE/payload" -name 'libe_sqlite3.so' -exec strip --strip-unneeded {} +
(cd "$STAGE" && dpkg-buildpackage -b -us -uc >"$ROOT/dist/dpkg-buildpackage.log" 2>&1) || { tail -30 "$ROOT/dist/dpkg-buildpackage.log" >&2; exit 1; }
mv "$ROOT"/dist/build/*.deb "$ROOT/dist/"
rm -rf "$ROOT/dist/build"
ls -1 "$ROOT"/dist/*.deb
echo "==> lintian" >&2
lintian --fail-on error "$ROOT"/dist/*.deb | tee "$ROOT/dist/lintian.txt" || { echo "lintian reported errors" >&2; exit 1; }
