#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The test suite on the kernels operators run: each kernel is a Debian kernel package
# (fetched with apt, never installed) booted in a throwaway QEMU guest whose root is this
# machine's own root filesystem, read-only over 9p under a tmpfs overlay. So the guest has
# the host's build, tools and packages without a disk image, and nothing it writes reaches
# the host except through the one shared results directory. (virtme-ng, the kernel's
# vmtest.sh and libbpf's CI boot kernels the same way.)
#
#   tests/kernels/run.sh [--quick] [KERNEL...]             tests/run.sh in each guest
#   tests/kernels/run.sh KERNEL -- COMMAND [ARG...]        one command in one guest
#   tests/kernels/run.sh --fetch [KERNEL...]               only fetch them into the cache
#
# KERNEL: 6.1 (Debian 12's own kernel), 6.12 (bookworm-backports'), the name of a generic
# linux-image-* package, or such a package's .deb file (a kernel of another release).
# Default: $KERNELS, else "6.1 6.12". --quick runs tests/run.sh --quick (the subset named
# there) instead of the whole suite. The suite's output is shown live, each line led by
# [KERNEL]; then one tally line per kernel and, last, the sum:
# `N passed, N failed` (`, N skipped`). Exit status non-zero when anything failed, a guest
# did not boot or ran past its time. With a COMMAND: its output, then its exit status.
# The build must exist first (make tests-build); the guest runs it, it never builds.
#
# Environment:
#   BPFREDIR_KERNEL_CACHE  where kernels are kept (/var/cache/bpfredir/kernels): 100-400 MB a
#                          kernel, fetched once; a newer package of the same series replaces
#                          the older one
#   BPFREDIR_VM_OUT        results, one directory per kernel (.output/kernels): log (the
#                          command's output), console.log (the guest's console), rc
#   BPFREDIR_VM_TIMEOUT    seconds a guest may run (quick 1500, full 5400, command 1800)
#   BPFREDIR_VM_MEM, BPFREDIR_VM_CPUS   guest size (2G, 2)
#   BPFREDIR_VM_ACCEL      kvm, tcg or auto (kvm only when the CPU has vmx/svm)
#   BPFREDIR_VM_BOOT_TRIES boots of a guest that crashes before its command starts (3)
#   BPFREDIR_TEST_TIME_SCALE, TEST_JOBS  passed to tests/run.sh in the guest (see below)
#
# Needs root, qemu-system-x86, busybox-static, kmod and xz-utils (make deps-kernels).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF=$REPO/tests/kernels/run.sh
CACHE=${BPFREDIR_KERNEL_CACHE:-/var/cache/bpfredir/kernels}
OUT_ROOT=${BPFREDIR_VM_OUT:-$REPO/.output/kernels}
MEM=${BPFREDIR_VM_MEM:-2G}
CPUS=${BPFREDIR_VM_CPUS:-2}
ACCEL=${BPFREDIR_VM_ACCEL:-auto}
# Under TCG the guest runs the suite about N times slower than the host: tests/run.sh gives
# each script that many times its limit. (Measured: docs/kernels.md.)
TIME_SCALE=${BPFREDIR_TEST_TIME_SCALE:-4}
# Two scripts at a time on two emulated CPUs: measured against one at a time (docs/kernels.md).
GUEST_JOBS=${TEST_JOBS:-2}
# The modules the initramfs loads to mount the root: 9p over virtio and overlayfs, with
# what they depend on. Debian's generic kernels build them as modules; the -cloud flavour
# has no 9p at all.
INITRD_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

say() { printf 'kernels: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 2
}

usage() {
	sed -n '/^#   tests/,/^# Needs root/{ s/^# \{0,1\}//p }' "$SELF"
	exit "${1:-2}"
}

# ============================================================================ guest side ==
# Inside the guest, after the initramfs (see write_initramfs) has switched to the overlay
# root: this script runs again as PID 1 with --guest. It gives the suite what a host has
# (bpffs, cgroup2, /run, module loading), runs the command and powers the guest off. Its
# results directory comes from the kernel command line (bpfredir_vm=DIR).
guest_main() {
	local out=${bpfredir_vm:?} rc cmd=()
	[[ -r $out/cmd ]] || guest_off "no $out/cmd: the results directory is not there"
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
	export LANG=C.UTF-8 TERM=dumb
	# devtmpfs has none of these; bash needs /dev/fd for process substitution.
	ln -sfn /proc/self/fd /dev/fd
	ln -sf /proc/self/fd/0 /dev/stdin
	ln -sf /proc/self/fd/1 /dev/stdout
	ln -sf /proc/self/fd/2 /dev/stderr
	mkdir -p /dev/pts /dev/shm
	mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
	mount -t tmpfs -o mode=1777 tmpfs /dev/shm
	mount -t bpf -o mode=0700 bpf /sys/fs/bpf
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
	# Modules load on demand (veth, sch_ingress, vxlan, ...) with the host's modprobe from
	# the unpacked package in the cache.
	mkdir -p "/lib/modules/$(uname -r)"
	mount --bind "$(cat "$out/moddir")" "/lib/modules/$(uname -r)"
	# Some modules load when their device node is opened (tun: /dev/net/tun), and devtmpfs
	# has those nodes only once the module is there: make them, as systemd does at boot.
	local module node dev major
	while read -r module node dev; do
		[[ $module != \#* && ! -e /dev/$node ]] || continue
		# dev is TYPEMAJOR:MINOR, as c10:200.
		major=${dev%:*}
		mkdir -p "$(dirname "/dev/$node")"
		mknod "/dev/$node" "${dev:0:1}" "${major:1}" "${dev#*:}" 2>/dev/null
	done <"/lib/modules/$(uname -r)/modules.devname"
	ip link set lo up
	hostname bpfredir-guest
	printf 'kernels: guest %s up after %ss\n' "$(uname -r)" "$(cut -d' ' -f1 /proc/uptime)"
	date +%s >"$out/started"

	mapfile -d '' cmd <"$out/cmd"
	# shellcheck disable=SC1091 # written by the host side (run_guest)
	. "$out/env"
	cd "$(cat "$out/cwd")" || exit 1
	# The output goes to the console (read live by the host) and to the log; tee is not
	# waited for, as a daemon the command left behind may hold its pipe open.
	exec 3> >(tee "$out/log" >/dev/console)
	"${cmd[@]}" </dev/null >&3 2>&3
	rc=$?
	echo "$rc" >"$out/rc"
	exec 3>&-
	guest_off
}

# guest_off [WHY]: PID 1 must not exit (the kernel would panic): power off, which ends qemu.
guest_off() {
	[[ -z ${1:-} ]] || echo "kernels: guest: $1" >/dev/console
	sleep 1
	sync
	echo o >/proc/sysrq-trigger
	sleep 30
	exit 1
}

if [[ ${1:-} == --guest ]]; then
	guest_main
fi

# ============================================================================= host side ==

# resolve_kernel SPEC: sets PKG (linux-image-*), PKG_VERSION and SERIES for SPEC (6.1, 6.12
# or a package name). For a series, the newest linux-image-amd64 of that series apt knows
# names the image package (its first dependency).
resolve_kernel() {
	local spec=$1 line
	case $spec in
	*-cloud-*) die "$spec: the -cloud flavour has no 9p (CONFIG_NET_9P), use the generic one" ;;
	*.deb)
		[[ -f $spec ]] || die "$spec: no such file"
		PKG=$(dpkg-deb -f "$spec" Package 2>/dev/null) &&
			PKG_VERSION=$(dpkg-deb -f "$spec" Version 2>/dev/null) ||
			die "$spec: not a Debian package"
		[[ $PKG == linux-image-* ]] || die "$spec: $PKG is not a linux-image package"
		SERIES=$(sed -E 's/^linux-image-([0-9]+\.[0-9]+).*/\1/' <<<"$PKG")
		DEB_FILE=$spec
		;;
	linux-image-*)
		PKG=$spec
		SERIES=$(sed -E 's/^linux-image-([0-9]+\.[0-9]+).*/\1/' <<<"$spec")
		PKG_VERSION=$(apt-cache show "$PKG" 2>/dev/null | awk '/^Version:/ { print $2 }' |
			sort -V | tail -n1)
		;;
	[0-9]*.[0-9]*)
		SERIES=$spec
		line=$(apt-cache show linux-image-amd64 2>/dev/null | awk -v s="$spec." '
			/^Version:/ { v = $2 }
			/^Depends:/ && index(v, s) == 1 { print v, $2 }' | sort -V | tail -n1)
		PKG=${line#* }
		PKG_VERSION=${line%% *}
		;;
	*) die "$spec: not a kernel (6.1, 6.12 or linux-image-*)" ;;
	esac
	[[ -n $PKG && -n $PKG_VERSION ]]
}

# kernel_label SPEC: what a kernel is called in output lines and results directories.
kernel_label() {
	local label=${1##*/}
	echo "${label%.deb}"
}

# cached_kernel SERIES: the kernel of SERIES in the cache, if any (for when apt knows none).
cached_kernel() {
	grep -lx "$1" "$CACHE"/*/series 2>/dev/null | head -n1 | xargs -r dirname
}

# fetch_kernel SPEC: sets KDIR (the unpacked package in the cache) and KVER (its uname -r),
# downloading and unpacking it on first use. apt's lists are refreshed once when they name
# no such kernel or name a version the archive no longer has.
APT_UPDATED=0
fetch_kernel() {
	local spec=$1 stage deb moddir
	if ! resolve_kernel "$spec" && ((APT_UPDATED == 0)); then
		APT_UPDATED=1
		say "apt knows no kernel $spec: apt-get update"
		apt-get update -q >&2
		resolve_kernel "$spec"
	fi
	if [[ -z ${PKG:-} || -z ${PKG_VERSION:-} ]]; then
		KDIR=$(cached_kernel "$spec")
		[[ -n $KDIR ]] || die "no kernel package for $spec in apt's lists nor in $CACHE"
		say "apt knows no kernel $spec; using the cached $(basename "$KDIR")"
	else
		KDIR=$CACHE/${PKG}_$PKG_VERSION
	fi
	if [[ ! -e $KDIR/ok ]]; then
		mkdir -p "$CACHE" || die "cannot make $CACHE"
		stage=$(mktemp -d "$CACHE/.fetch.XXXXXX") || die "cannot write to $CACHE"
		# apt's download sandbox user must be able to write there.
		chown _apt "$stage" 2>/dev/null
		say "fetching $PKG $PKG_VERSION into $CACHE"
		if [[ -n ${DEB_FILE:-} ]]; then
			cp "$DEB_FILE" "$stage/" || { rm -rf "$stage"; die "cannot copy $DEB_FILE"; }
		elif ! (cd "$stage" && apt-get download -q "$PKG=$PKG_VERSION" >&2); then
			((APT_UPDATED == 0)) || { rm -rf "$stage"; die "apt-get download $PKG failed"; }
			APT_UPDATED=1
			apt-get update -q >&2
			resolve_kernel "$spec" || { rm -rf "$stage"; die "no kernel $spec after apt-get update"; }
			rm -rf "$stage"
			fetch_kernel "$spec"
			return
		fi
		deb=$(echo "$stage"/*.deb)
		if ! dpkg-deb -x "$deb" "$stage/root" 2>/dev/null; then
			rm -rf "$stage"
			die "cannot unpack $deb"
		fi
		rm -f "$deb"
		rm -rf "$stage/root/usr/share"
		# The package ships no modules.dep: that is made at install, here by depmod.
		moddir=$(find "$stage/root" -path '*/lib/modules/*' -maxdepth 4 -mindepth 3 -type d | head -n1)
		[[ -n $moddir ]] || { rm -rf "$stage"; die "$PKG has no lib/modules"; }
		basename "$moddir" >"$stage/kver"
		mv "$moddir" "$stage/modules"
		mkdir -p "$stage/modules-root/lib/modules"
		mv "$stage/modules" "$stage/modules-root/lib/modules/$(cat "$stage/kver")"
		mv "$stage/root/boot/vmlinuz-"* "$stage/vmlinuz" 2>/dev/null ||
			{ rm -rf "$stage"; die "$PKG has no vmlinuz"; }
		rm -rf "$stage/root"
		depmod -b "$stage/modules-root" "$(cat "$stage/kver")" || { rm -rf "$stage"; die "depmod failed"; }
		echo "$SERIES" >"$stage/series"
		echo "$PKG $PKG_VERSION" >"$stage/package"
		touch "$stage/ok"
		# One kernel per series: the one just fetched replaces older ones.
		grep -lx "$SERIES" "$CACHE"/*/series 2>/dev/null | xargs -r dirname | xargs -r rm -rf
		rm -rf "$KDIR" && mv "$stage" "$KDIR"
		say "$PKG $PKG_VERSION cached in $KDIR ($(du -sh "$KDIR" | cut -f1))"
	fi
	KVER=$(cat "$KDIR/kver")
}

# write_initramfs KDIR DIR: DIR/initrd, a busybox initramfs that loads INITRD_MODULES,
# mounts the host's root (9p tag hostroot) read-only under a tmpfs overlay and the results
# directory (tag results) at the same path as on the host, then runs this script with
# --guest as PID 1 of the new root. Made for every run: small, and never stale.
write_initramfs() {
	local kdir=$1 dir=$2 kver ir mod ko name
	kver=$(cat "$kdir/kver")
	ir=$dir/initramfs
	rm -rf "$ir" && mkdir -p "$ir"/{bin,dev,proc,sys,lower,rw,newroot,modules}
	cp /bin/busybox "$ir/bin/" || return 1
	# modprobe --show-depends lists each module's dependencies first, as insmod needs.
	for mod in "${INITRD_MODULES[@]}"; do
		modprobe -d "$kdir/modules-root" -S "$kver" --show-depends "$mod" || {
			say "error: $kver has no module $mod"
			return 1
		}
	done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' >"$dir/initrd-modules"
	while read -r ko; do
		name=$(basename "$ko")
		name=${name%.xz}
		name=${name%.zst}
		# busybox insmod takes plain .ko files only.
		case $ko in
		*.xz) xz -dc "$ko" >"$ir/modules/$name" ;;
		*.zst) zstd -qdc "$ko" >"$ir/modules/$name" ;;
		*) cp "$ko" "$ir/modules/$name" ;;
		esac || return 1
		echo "$name" >>"$ir/modules/order"
	done <"$dir/initrd-modules"
	cat >"$ir/init" <<'EOF'
#!/bin/busybox sh
# bpfredir test guest, stage 1 (from tests/kernels/run.sh): mount the host's root under a
# tmpfs overlay and hand over to the script's --guest side.
/bin/busybox --install -s /bin
export PATH=/bin
halt() {
	echo "kernels: initramfs: $*"
	poweroff -f
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
touch /modules/order
while read -r m; do
	insmod "/modules/$m" || halt "insmod $m failed"
done </modules/order
# msize: 9p's default of 8 KiB makes every read of a binary many round trips.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /lower ||
	halt "cannot mount the host's root over 9p"
mount -t tmpfs -o mode=0755 tmpfs /rw && mkdir -p /rw/upper /rw/work /rw/repo/upper /rw/repo/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	halt "cannot mount the overlay root"
# The host's /run and /tmp show through the overlay: their netns files, locks and other
# runs' temp files are not this guest's. (Before the repository and the results directory,
# which may be there: a CI clone often is in /tmp.)
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
# The repository, shared on its own: wherever it is, the guest sees it at the same path,
# read-only with its own overlay, as the root.
mkdir -p /repo "/newroot$bpfredir_repo"
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 repo /repo &&
	mount -t overlay -o lowerdir=/repo,upperdir=/rw/repo/upper,workdir=/rw/repo/work overlay \
		"/newroot$bpfredir_repo" || halt "cannot mount the repository"
mkdir -p "/newroot$bpfredir_vm"
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 results \
	"/newroot$bpfredir_vm" || halt "cannot mount the results directory"
for fs in proc sys dev; do
	mount --move "/$fs" "/newroot/$fs"
done
exec switch_root /newroot /bin/bash "$(cat "/newroot$bpfredir_vm/self")" --guest
EOF
	chmod 0755 "$ir/init"
	(cd "$ir" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$dir/initrd" ||
		return 1
	rm -rf "$ir"
}

# pick_accel: KVM needs hardware virtualization (vmx/svm). Some sandboxes have a /dev/kvm
# without it (kvm_pvm, which runs only kernels built for PVM): Debian's kernels do not boot
# there, so they get TCG, QEMU's emulation of the same CPU.
pick_accel() {
	case $ACCEL in
	auto)
		if [[ -w /dev/kvm ]] && grep -qw -E 'vmx|svm' /proc/cpuinfo; then
			echo kvm
		else
			echo tcg
		fi
		;;
	kvm | tcg) echo "$ACCEL" ;;
	*) die "BPFREDIR_VM_ACCEL=$ACCEL: kvm, tcg or auto" ;;
	esac
}

# run_guest LABEL OUT TIMEOUT CMD...: boot KDIR/KVER with CMD (run in this directory) and
# show its output live, each line led by [LABEL]. Returns CMD's exit status, 124 when the
# guest ran past TIMEOUT, 125 when it never reported one (it did not boot, or crashed).
run_guest() {
	local label=$1 out=$2 limit=$3 accel qemu_accel=() t0 t0_epoch rc
	shift 3
	accel=$(pick_accel)
	case $accel in
	kvm) qemu_accel=(-accel kvm -cpu host) ;;
	# thread=multi: one host thread per emulated CPU.
	tcg) qemu_accel=(-accel "tcg,thread=multi" -cpu max) ;;
	esac
	rm -rf "$out"
	mkdir -p "$out" || die "cannot make $out"
	write_initramfs "$KDIR" "$out" || die "cannot make the initramfs for $KVER"
	printf '%s\0' "$@" >"$out/cmd"
	pwd >"$out/cwd"
	echo "$SELF" >"$out/self"
	echo "$KDIR/modules-root/lib/modules/$KVER" >"$out/moddir"
	{
		printf 'export BPFREDIR_TEST_TIME_SCALE=%q TEST_JOBS=%q CI=%q\n' \
			"$TIME_SCALE" "$GUEST_JOBS" "${CI:-}"
	} >"$out/env"
	say "$label: booting $KVER ($accel, $CPUS CPUs, $MEM) for: $*"
	t0=$SECONDS
	t0_epoch=$(date +%s)
	# The console is the guest's serial port; its CRs go. -no-reboot: a panic (panic=-1)
	# ends qemu instead of booting again.
	timeout -k 10 "$limit" qemu-system-x86_64 "${qemu_accel[@]}" -m "$MEM" -smp "$CPUS" \
		-nographic -no-reboot -nic none -kernel "$KDIR/vmlinuz" -initrd "$out/initrd" \
		-append "console=ttyS0 quiet panic=-1 bpfredir_vm=$out bpfredir_repo=$REPO" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$REPO,mount_tag=repo,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$out,mount_tag=results,security_model=none,multidevs=remap" \
		</dev/null 2>&1 | sed -u -e 's/\r$//' -e 's/\x1b\[[?0-9;]*[a-zA-Z]//g' -e 's/\x1bc//g' | tee "$out/console.log" | sed -u "s/^/[$label] /"
	rc=${PIPESTATUS[0]}
	GUEST_SECONDS=$((SECONDS - t0))
	if [[ -s $out/started ]]; then
		GUEST_BOOT=$(($(cat "$out/started") - t0_epoch))
	else
		GUEST_BOOT=
	fi
	if ((rc == 124 || rc == 137)); then
		say "$label: the guest ran past ${limit}s"
		return 124
	fi
	if [[ ! -s $out/rc ]]; then
		say "$label: the guest never reported an exit status (qemu exit $rc); its console:"
		tail -n 20 "$out/console.log" | sed "s/^/[$label] /" >&2
		return 125
	fi
	return "$(cat "$out/rc")"
}

# BOOT_TRIES: a guest that crashes before its command starts is booted again, up to this
# many times in all. QEMU's emulation (TCG) has crashed Debian's 6.12 in early boot once in
# many boots here (a fault in sched_clock_cpu from an interrupt, 1.5 s in, before userspace)
# where the same kernel and command then booted and ran cleanly: no test had run, so booting
# again hides no test's failure. A crash after the command started is never retried.
BOOT_TRIES=${BPFREDIR_VM_BOOT_TRIES:-3}

# boot_guest LABEL OUT TIMEOUT CMD...: run_guest, again while the guest crashes before CMD
# starts; each crashed boot's console is kept beside OUT as OUT.bootN.log.
boot_guest() {
	local label=$1 out=$2 try rc
	for ((try = 1; ; try++)); do
		run_guest "$@"
		rc=$?
		((rc == 125)) && [[ ! -e $out/started ]] && ((try < BOOT_TRIES)) || return "$rc"
		cp "$out/console.log" "$out.boot$try.log" 2>/dev/null
		say "$label: the guest crashed while booting, before its command started (boot $try of" \
			"at most $BOOT_TRIES; console kept in $out.boot$try.log): booting it again"
	done
}

# ================================================================================== main ==
QUICK=0
FETCH_ONLY=0
KERNEL_LIST=()
COMMAND=()
while (($# > 0)); do
	case $1 in
	--quick) QUICK=1 ;;
	--fetch) FETCH_ONLY=1 ;;
	-h | --help) usage 0 ;;
	--)
		shift
		COMMAND=("$@")
		break
		;;
	-*) usage ;;
	*) KERNEL_LIST+=("$1") ;;
	esac
	shift
done
((${#KERNEL_LIST[@]} > 0)) || read -ra KERNEL_LIST <<<"${KERNELS:-6.1 6.12}"
((${#KERNEL_LIST[@]} > 0)) || usage
[[ $EUID -eq 0 ]] || die "must be run as root (sudo make test-kernels)"
for tool in qemu-system-x86_64 modprobe depmod xz apt-get dpkg-deb; do
	command -v "$tool" >/dev/null || die "$tool missing (run: make deps-kernels)"
done
# The initramfs has no libc: its busybox must be the static one.
if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then
	die "no static /bin/busybox (run: make deps-kernels)"
fi
[[ $OUT_ROOT == /* ]] || OUT_ROOT=$PWD/$OUT_ROOT
# The guest takes these paths from the kernel command line and a shell's word splitting.
[[ $OUT_ROOT$REPO != *[[:space:]]* ]] || die "no spaces in $OUT_ROOT or $REPO, please"

if ((FETCH_ONLY)); then
	for kernel in "${KERNEL_LIST[@]}"; do
		fetch_kernel "$kernel"
		say "$kernel: $(cat "$KDIR/package") in $KDIR"
	done
	exit 0
fi
if ((${#COMMAND[@]} > 0)); then
	((${#KERNEL_LIST[@]} == 1)) || die "a command runs in one kernel: name one"
	fetch_kernel "${KERNEL_LIST[0]}"
	label=$(kernel_label "${KERNEL_LIST[0]}")
	boot_guest "$label" "$OUT_ROOT/$label" "${BPFREDIR_VM_TIMEOUT:-1800}" \
		"${COMMAND[@]}"
	rc=$?
	say "$label: exit $rc after ${GUEST_SECONDS}s; output in $OUT_ROOT/$label"
	exit "$rc"
fi

[[ -x $REPO/build/bpfredir ]] || die "nothing built: run make tests-build first"
suite=("$REPO/tests/run.sh")
limit=${BPFREDIR_VM_TIMEOUT:-5400}
if ((QUICK)); then
	suite+=(--quick)
	limit=${BPFREDIR_VM_TIMEOUT:-1500}
fi
cd "$REPO" || exit 1
passed=0 failed=0 skipped=0 tallies=() failures=()
for spec in "${KERNEL_LIST[@]}"; do
	fetch_kernel "$spec"
	kernel=$(kernel_label "$spec")
	out=$OUT_ROOT/$kernel
	rm -f "$out".boot*.log
	boot_guest "$kernel" "$out" "$limit" "${suite[@]}"
	rc=$?
	# The suite's own last line: N passed, N failed[, N skipped].
	read -r p f s < <(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/log" 2>/dev/null | tail -n1 |
		sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$/\1 \2 \4/')
	p=${p:-0} f=${f:-0} s=${s:-0}
	case $rc in
	124) f=$((f + 1)) failures+=("[$kernel] FAIL: $kernel: the guest ran past ${limit}s") ;;
	125) f=$((f + 1)) failures+=("[$kernel] FAIL: $kernel: the guest did not run the suite (see $out/console.log)") ;;
	0) ;;
	*) ((f > 0)) || { f=1 failures+=("[$kernel] FAIL: $kernel: tests/run.sh exited $rc"); } ;;
	esac
	mapfile -t -O "${#failures[@]}" failures < <(grep '^FAIL: ' "$out/log" 2>/dev/null | sed "s/^/[$kernel] /")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	tallies+=("$(printf '%s (%s, %s): %d passed, %d failed, %d skipped in %ds (boot %ss)' "$kernel" \
		"$KVER" "$(pick_accel)" "$p" "$f" "$s" "$GUEST_SECONDS" "${GUEST_BOOT:-?}")")
done

echo
((${#failures[@]} == 0)) || printf '%s\n' "${failures[@]}"
printf '# kernel %s\n' "${tallies[@]}"
if ((skipped > 0)); then
	printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
else
	printf '%d passed, %d failed\n' "$passed" "$failed"
fi
((failed == 0 && passed > 0))
