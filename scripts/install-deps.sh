#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Installs what bpfredir needs to build, test and demo on Debian: the toolchain, libbpf and
# bpftool, and the real clients and servers the tests drive. Idempotent and quick when
# everything is already there: apt is only called (and its lists only updated) when a
# package is missing. On Debian 12 (bookworm), libbpf-dev >= 1.3 and bpftool come from
# bookworm-backports, whose source is added if absent.
#
#   scripts/install-deps.sh [--kernels]
#
# --kernels: also what the tests on other kernels need (make test-kernels, tests/kernels/run.sh):
# QEMU to boot Debian's kernel packages, a static busybox for their initramfs, kmod for their
# modules and xz-utils to unpack them (about 70 MB, so only for those who run them).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# Build: toolchain, libbpf's link deps, json-c (--json output). Tests and demo: namespaces and
# tc (iproute2), nsenter (util-linux), HTTPS server and clients (openssl, curl, lwp-request),
# raw packets (scapy), JSON (jq), process tools (procps), socat and iperf3, offload switches
# (ethtool), a foreign XDP program for the XDP mode test (xdp-filter, from xdp-tools), and
# the scanners whose view of bpfredir is compared with the kernel's (nmap, hping3), the seed's
# service itself (tomcat10-common: Tomcat's files and a JRE, no system service), and a
# container runtime for the OCI hook (podman with runc: crun refuses a hybrid cgroup layout;
# containers run a static busybox), and the Debian package's build and check (make deb:
# debhelper, fakeroot, lintian) and the container image (make image: mmdebstrap).
# Benchmarks (make bench): the iptables recipe (iptables: both iptables-nft and
# iptables-legacy), native nftables, and the plot (gnuplot-nox).
PACKAGES=(clang llvm make gcc pkg-config libelf-dev zlib1g-dev libjson-c-dev iproute2 curl
	openssl socat python3-scapy iperf3 libwww-perl liblwp-protocol-https-perl tomcat10-common jq
	util-linux coreutils procps ethtool xdp-tools nmap hping3 iptables nftables gnuplot-nox podman
	runc conmon containernetworking-plugins catatonit busybox-static debhelper dpkg-dev fakeroot
	lintian mmdebstrap)
case ${1:-} in
"") ;;
--kernels) PACKAGES+=(qemu-system-x86 busybox-static kmod xz-utils) ;;
*)
	printf 'usage: %s [--kernels]\n' "$0" >&2
	exit 2
	;;
esac
# libbpf-dev and bpftool must be recent: on bookworm they come from backports.
LIBBPF_MIN=1.3
BPFTOOL_MIN=7.3
BACKPORTS_SOURCE=/etc/apt/sources.list.d/bookworm-backports.sources

say() { printf 'install-deps: %s\n' "$*"; }
die() {
	printf 'install-deps: error: %s\n' "$*" >&2
	exit 1
}

if [[ $EUID -ne 0 ]]; then
	die "must be run as root (try: sudo make deps)"
fi

installed_version() {
	dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' "$1" 2>/dev/null |
		awk '$1 == "ii" { print $2 }'
}

# Is package $1 installed, at version >= $2 when given?
have_package() {
	local version
	version=$(installed_version "$1")
	[[ -n $version ]] || return 1
	[[ -z ${2:-} ]] || dpkg --compare-versions "${version#*:}" ge "$2"
}

codename() {
	# shellcheck disable=SC1091
	(. /etc/os-release && printf '%s\n' "${VERSION_CODENAME:-}")
}

ensure_backports_source() {
	[[ -e $BACKPORTS_SOURCE ]] && return 1
	grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 1
	say "adding $BACKPORTS_SOURCE"
	cat >"$BACKPORTS_SOURCE" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

missing=()
for pkg in "${PACKAGES[@]}"; do
	have_package "$pkg" || missing+=("$pkg")
done
missing_new=()
have_package libbpf-dev "$LIBBPF_MIN" || missing_new+=(libbpf-dev)
have_package bpftool "$BPFTOOL_MIN" || missing_new+=(bpftool)

if ((${#missing[@]} + ${#missing_new[@]} > 0)); then
	command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]} ${missing_new[*]}"
	backports=()
	if [[ $(codename) == bookworm ]] && ((${#missing_new[@]} > 0)); then
		ensure_backports_source || true
		backports=(-t bookworm-backports)
	fi
	say "installing: ${missing[*]} ${missing_new[*]}"
	apt-get update -q
	if ((${#missing[@]} > 0)); then
		apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
	if ((${#missing_new[@]} > 0)); then
		apt-get install -y -q --no-install-recommends "${backports[@]}" "${missing_new[@]}"
	fi
fi

for pkg in "${PACKAGES[@]}"; do
	have_package "$pkg" || die "package $pkg is still not installed"
done
pkg-config --atleast-version="$LIBBPF_MIN" libbpf ||
	die "libbpf >= $LIBBPF_MIN is required, found $(pkg-config --modversion libbpf 2>/dev/null || echo none) (on Debian 12, install libbpf-dev from bookworm-backports)"
command -v bpftool >/dev/null || die "bpftool not found in PATH"
have_package bpftool "$BPFTOOL_MIN" ||
	die "bpftool >= $BPFTOOL_MIN is required, found $(installed_version bpftool) (on Debian 12, install it from bookworm-backports)"
say "all dependencies present (libbpf $(pkg-config --modversion libbpf), $(bpftool version | head -n1))"
