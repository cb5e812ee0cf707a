#!/usr/bin/env bash
# install-deps.sh [--bench]: installs the Debian 12 packages odsd needs to
# build, test and run (and, with --bench, to benchmark), skipping those that
# are already installed. Needs root when anything is missing.
set -euo pipefail

pkgs=(build-essential autoconf automake pkg-config
	libmicrohttpd-dev libpq-dev libjansson-dev libjwt-dev libssl-dev zlib1g-dev check
	postgresql-15 clang-format acl
	clang libclang-rt-14-dev) # the libFuzzer targets (make fuzz; deploy/test.sh smoke-runs them)
if [ "${1:-}" = "--bench" ]; then
	pkgs+=(wrk procps openssl curl valgrind)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
