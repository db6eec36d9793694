#!/usr/bin/env bash
# The Debian package as an operator meets it (ctest `debian_package`, as root): build it, read
# its control data and contents, lintian with no error, install it with dpkg, verify the unit
# with systemd-analyze, run the unit's ExecStart by hand as an unprivileged user (systemd is not
# PID 1 here) and check it serves, writes only under its state directory and stops cleanly on
# SIGTERM, then remove and purge it.
#   tests/package/test_package.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?usage: test_package.sh BUILD_DIR}
fail() { echo "test_package: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
work=$(mktemp -d /tmp/jobstore-package-XXXXXX)
state=/var/lib/jobstore
server=""
cleanup() {
  [ -n "$server" ] && kill -9 "$server" 2>/dev/null || true
  dpkg -P jobstore >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
dpkg -s jobstore >/dev/null 2>&1 && fail "a jobstore package is installed already; remove it first"
[ -e "$state" ] && fail "$state exists already; this test would touch it"

echo "== build"
deb=$(scripts/package.sh "$build" "$work/out" | tail -1)
version=$(sed -nE 's/^project\(jobstore VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
[ "$(basename "$deb")" = "jobstore_${version}_amd64.deb" ] || fail "named $(basename "$deb")"

echo "== control data and contents"
info=$(dpkg-deb --info "$deb")
grep -q "^ Package: jobstore$" <<<"$info" || fail "no Package: jobstore"
grep -q "^ Version: $version$" <<<"$info" || fail "Version is not $version"
grep -q "^ Depends: .*libc6" <<<"$info" || fail "Depends not computed from the shared libraries"
for lib in libcpp-httplib libnats libspdlog libjemalloc; do
  grep -q "^ Depends: .*$lib" <<<"$info" || fail "Depends lacks $lib"
done
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = "/etc/jobstore/jobstore.conf" ] ||
  fail "the config file is not a conffile"
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/jobstore ./usr/lib/systemd/system/jobstore.service ./etc/jobstore/jobstore.conf \
         ./usr/share/man/man1/jobstore.1.gz ./usr/share/doc/jobstore/copyright \
         ./usr/share/doc/jobstore/changelog.gz; do
  grep -q " $f$" <<<"$contents" || fail "$f is not in the package"
done
# Every flag of `jobstore serve` is in the conffile, commented or set.
for flag in $("$build/cli/jobstore" serve --help | grep -oE '^  --[a-z-]+' | sed 's/^  --//'); do
  case $flag in help|config) continue ;; esac
  grep -qE "^#? ?$flag = " packaging/jobstore.conf || fail "the conffile does not mention $flag"
done

echo "== lintian"
lintian --fail-on error "$deb" 2>&1 | grep -v "root privileges" || true
lintian --fail-on error "$deb" >/dev/null 2>&1 || fail "lintian reports errors"

echo "== install"
dpkg -i "$deb" >/dev/null
/usr/bin/jobstore --version | grep -q "^jobstore $version (commit " || fail "--version"
systemd-analyze verify /usr/lib/systemd/system/jobstore.service || fail "systemd-analyze verify"
gzip -dc /usr/share/man/man1/jobstore.1.gz | grep -q -- "--max-connections" ||
  fail "the man page lacks serve's options"

echo "== the unit's ExecStart, by hand, as nobody"
exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/jobstore.service)
[ -n "$exec_start" ] || fail "no ExecStart"
install -d -o nobody -g nogroup -m 0700 "$state"  # what StateDirectory= makes
touch "$work/marker"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The environment beats the file: only the port changes (8000 may be taken here).
JOBSTORE_LISTEN=127.0.0.1:$port setpriv --reuid=nobody --regid=nogroup --clear-groups \
  --inh-caps=-all --no-new-privs $exec_start > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/server.log" >&2; fail "not ready"; }
job=$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"type":"pkg"}' \
  "http://127.0.0.1:$port/api/v1/jobs")
grep -q '"status":"pending"' <<<"$job" || fail "create: $job"
[ -n "$(find "$state" -newer "$work/marker" -type f)" ] || fail "nothing written under $state"
stray=$(find /tmp /var/tmp /dev/shm /etc /usr /var -xdev -user nobody -newer "$work/marker" \
        -not -path "$state/*" -not -path "$state" 2>/dev/null || true)
[ -z "$stray" ] || fail "wrote outside its state directory: $stray"
started=$SECONDS
kill -TERM "$server"
code=0
wait "$server" || code=$?
server=""
[ "$code" = 0 ] || { cat "$work/server.log" >&2; fail "exit $code after SIGTERM"; }
[ $((SECONDS - started)) -le 10 ] || fail "took $((SECONDS - started)) s to stop"
grep -q "stopped cleanly" "$work/server.log" || fail "no clean stop in the log"

echo "== remove, then purge"
dpkg -r jobstore >/dev/null
[ ! -e /usr/bin/jobstore ] || fail "the binary stays after remove"
[ -e /etc/jobstore/jobstore.conf ] || fail "remove deleted the conffile"
dpkg -P jobstore >/dev/null
[ ! -e /etc/jobstore/jobstore.conf ] || fail "purge left the conffile"
[ ! -e "$state" ] || fail "purge left $state"
echo "test_package: the package builds, installs, serves as nobody, stops and purges cleanly"
