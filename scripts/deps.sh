#!/usr/bin/env bash
# Installs what cllavio-milter needs to build, test and run, from Debian 12's
# packages. Idempotent and quiet when everything is present. Run as root.
set -euo pipefail

packages=(
  # build
  g++ make cmake ninja-build pkg-config
  libmilter-dev liblmdb-dev libtomlplusplus-dev nlohmann-json3-dev libboost-test-dev libssl-dev
  libcurl4-openssl-dev libsystemd-dev libmicrohttpd-dev libhiredis-dev
  # Debian package (scripts/package.sh) and its checks; man pages rendered by man -l
  debhelper dpkg-dev fakeroot lintian man-db
  # fuzzing (clang's libFuzzer and sanitizer runtimes)
  clang libclang-rt-14-dev
  # tests and demo: a real Postfix, its smtp-sink/smtp-source, swaks, private SASL through Dovecot
  postfix swaks dovecot-core python3 lmdb-utils procps
  # journal source tests: writes journal files from the export format without a journald
  systemd-journal-remote
  # shared quotas: a real Redis on loopback
  redis-server redis-tools
  # metrics test: a real Prometheus scrapes the daemon
  prometheus
  # browser test (tests/browser): renders original and tracked HTML in headless Chromium
  chromium chromium-driver python3-selenium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
# Postfix without a system-wide configuration: tests and the demo run private instances.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
