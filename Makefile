# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bpfredir, built the libbpf-bootstrap way: BPF objects and skeletons in .output/, the
# loader in build/. Quiet unless V=1.

OUTPUT := .output
BUILD := build
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= cc
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' \
	-e 's/riscv64/riscv/' -e 's/s390x/s390/' -e 's/loongarch64/loongarch/')
VMLINUX := vmlinux/$(ARCH)/vmlinux.h

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_HDRS := $(wildcard bpf/lib/*.h) include/bpfredir.h
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
LOADER_SRCS := $(wildcard loader/*.c)
LOADER_OBJS := $(patsubst loader/%.c,$(OUTPUT)/loader/%.o,$(LOADER_SRCS))
LOADER_HDRS := $(wildcard loader/*.h loader/core/*.h) include/bpfredir.h
# The core library (loader/core/): pins, objects, attachments, rule sets, host addresses. The CLI
# links it, and so can the unit tests and the benchmarks (it has no CLI globals and never exits).
CORE_SRCS := $(wildcard loader/core/*.c)
CORE_OBJS := $(patsubst loader/core/%.c,$(OUTPUT)/core/%.o,$(CORE_SRCS))
LIBBPFREDIR := $(BUILD)/libbpfredir.a
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
# What every unit test binary links: the runner and its asserts (tests/unit/lib/).
UNIT_LIB_SRCS := $(wildcard tests/unit/lib/*.c)
UNIT_HDRS := $(wildcard tests/unit/*.h tests/unit/lib/*.h)
# The integration tests' own BPF programs (tests/bpf/) and the tools that load them or read
# bpfredir's maps (tests/tools/, which may link the core), and a loader with failpoints (BPFREDIR_FAILPOINTS) for the crash tests.
TEST_BPF_SRCS := $(wildcard tests/bpf/*.bpf.c)
TEST_SKELS := $(patsubst tests/bpf/%.bpf.c,$(OUTPUT)/tests/%.skel.h,$(TEST_BPF_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRCS))
FAILPOINT_OBJS := $(patsubst loader/%.c,$(OUTPUT)/loader-failpoints/%.o,$(LOADER_SRCS))
CORE_FAILPOINT_OBJS := $(patsubst loader/core/%.c,$(OUTPUT)/core-failpoints/%.o,$(CORE_SRCS))
LIBBPFREDIR_FAILPOINTS := $(OUTPUT)/libbpfredir-failpoints.a
# Benchmarks (make bench): their own BPF programs and small C tools, in tests/bench/.
BENCH_BPF_SRCS := $(wildcard tests/bench/*.bpf.c)
BENCH_SKELS := $(patsubst tests/bench/%.bpf.c,$(OUTPUT)/bench/%.skel.h,$(BENCH_BPF_SRCS))
BENCH_SRCS := $(filter-out %.bpf.c,$(wildcard tests/bench/*.c))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

CFLAGS ?= -g -O2
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror
INCLUDES := -Iinclude -I$(OUTPUT) -Iloader
# Recursive on purpose: evaluated after `make deps` may have installed libbpf.
LIBBPF_CFLAGS = $(shell pkg-config --cflags libbpf)
LIBBPF_LIBS = $(shell pkg-config --libs libbpf) -lelf -lz
# --json output (loader/jsonout.c): json-c >= 0.14 (json_object_new_uint64), Debian's
# libjson-c-dev. The CLI only: not the core.
JSONC_CFLAGS = $(shell pkg-config --cflags json-c)
JSONC_LIBS = $(shell pkg-config --libs json-c)
# clang -target bpf does not know the host's multiarch include dirs; borrow them from cc.
CLANG_BPF_SYS_INCLUDES = $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) -Iinclude -I$(dir $(VMLINUX))
# BPF_CPU=v2 (say) emits other instructions for the same programs: a "newer build" in tests.
BPF_CFLAGS += $(if $(BPF_CPU),-mcpu=$(BPF_CPU))

ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
	MAKEFLAGS += --no-print-directory
endif

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/bpfredir
# podman and CRI-O read /usr/share/containers/oci/hooks.d (and /etc/...): with PREFIX=/usr/local
# name this directory in containers.conf's hooks_dir.
HOOKSDIR ?= $(PREFIX)/share/containers/oci/hooks.d
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
OCI_HOOKS := bpfredir-attach.json bpfredir-detach.json
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
UNITS := bpfredir.service bpfredir-watch.service bpfredir-apply-watch.service
INSTALLED := $(SBINDIR)/bpfredir $(MANDIR)/man8/bpfredir.8 $(MANDIR)/man5/bpfredir.conf.5 \
	$(addprefix $(UNITDIR)/,$(UNITS)) $(DOCDIR)/bpfredir.conf.example \
	$(addprefix $(HOOKSDIR)/,$(OCI_HOOKS)) $(COMPLETIONDIR)/bpfredir

.PHONY: all deps test demo vmlinux clean check-libbpf tests-build newer-build old-builds install \
	uninstall bench bench-build deps-kernels test-kernels test-kernels-quick test-churn deb image \
	test-dist docs docs-check

all: $(BUILD)/bpfredir

check-libbpf:
	$(Q)pkg-config --atleast-version=1.3 libbpf || \
		{ echo "libbpf >= 1.3 is required (have: $$(pkg-config --modversion libbpf 2>/dev/null || echo none)); run 'make deps'" >&2; exit 1; }
	$(Q)command -v $(BPFTOOL) >/dev/null || { echo "bpftool not found; run 'make deps'" >&2; exit 1; }
	$(Q)pkg-config --atleast-version=0.14 json-c || \
		{ echo "json-c >= 0.14 is required (have: $$(pkg-config --modversion json-c 2>/dev/null || echo none)); run 'make deps'" >&2; exit 1; }

$(OUTPUT) $(OUTPUT)/loader $(OUTPUT)/bench $(BUILD) $(BUILD)/tests $(BUILD)/bench \
		$(OUTPUT)/tests $(OUTPUT)/loader-failpoints $(BUILD)/tests/tools $(OUTPUT)/core \
		$(OUTPUT)/core-failpoints $(OUTPUT)/unit:
	$(Q)mkdir -p $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(VMLINUX) | $(OUTPUT) check-libbpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(CLANG_BPF_SYS_INCLUDES) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o | $(OUTPUT)
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(OUTPUT)/loader/%.o: loader/%.c $(LOADER_HDRS) $(SKELS) | $(OUTPUT)/loader
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(INCLUDES) $(LIBBPF_CFLAGS) $(JSONC_CFLAGS) -c $< -o $@

$(OUTPUT)/core/%.o: loader/core/%.c $(LOADER_HDRS) $(SKELS) | $(OUTPUT)/core
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(INCLUDES) $(LIBBPF_CFLAGS) -c $< -o $@

$(LIBBPFREDIR): $(CORE_OBJS) | $(BUILD)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/bpfredir: $(LOADER_OBJS) $(LIBBPFREDIR) | $(BUILD)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LIBBPF_LIBS) $(JSONC_LIBS) -o $@

# A binary's tests, for the runner (tests/unit/lib/harness.c): each `void test_NAME(void)`.
$(OUTPUT)/unit/%/tests.h: tests/unit/%.c | $(OUTPUT)/unit
	$(call msg,GEN-TESTS,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)sed -n 's/^void test_\([A-Za-z0-9_]*\)(void).*/DEFINE_TEST(\1)/p' $< > $@.tmp && \
		mv $@.tmp $@

$(BUILD)/tests/%: tests/unit/%.c $(OUTPUT)/unit/%/tests.h $(UNIT_LIB_SRCS) $(UNIT_HDRS) \
		$(LOADER_HDRS) $(SKELS) $(LIBBPFREDIR) | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -Itests/unit -Itests/unit/lib -I$(OUTPUT)/unit/$* \
		$(LIBBPF_CFLAGS) $< $(UNIT_LIB_SRCS) $(LIBBPFREDIR) $(LIBBPF_LIBS) -o $@

$(OUTPUT)/tests/%.bpf.o: tests/bpf/%.bpf.c $(VMLINUX) | $(OUTPUT)/tests check-libbpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(CLANG_BPF_SYS_INCLUDES) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(OUTPUT)/tests/%.skel.h: $(OUTPUT)/tests/%.bpf.o | $(OUTPUT)/tests
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/tools/%: tests/tools/%.c $(TEST_SKELS) $(LOADER_HDRS) $(LIBBPFREDIR) \
		| $(BUILD)/tests/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -I$(OUTPUT)/tests $(LIBBPF_CFLAGS) $< $(LIBBPFREDIR) \
		$(LIBBPF_LIBS) -o $@

# The loader again, with the failpoints tests/integration/crash.sh kills it at; the
# normal build has none.
$(OUTPUT)/loader-failpoints/%.o: loader/%.c $(LOADER_HDRS) $(SKELS) | $(OUTPUT)/loader-failpoints
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -DBPFREDIR_FAILPOINTS $(INCLUDES) $(LIBBPF_CFLAGS) $(JSONC_CFLAGS) -c $< \
		-o $@

$(OUTPUT)/core-failpoints/%.o: loader/core/%.c $(LOADER_HDRS) $(SKELS) | $(OUTPUT)/core-failpoints
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -DBPFREDIR_FAILPOINTS $(INCLUDES) $(LIBBPF_CFLAGS) -c $< -o $@

$(LIBBPFREDIR_FAILPOINTS): $(CORE_FAILPOINT_OBJS) | $(OUTPUT)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/tests/bpfredir-failpoints: $(FAILPOINT_OBJS) $(LIBBPFREDIR_FAILPOINTS) | $(BUILD)/tests
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LIBBPF_LIBS) $(JSONC_LIBS) -o $@

tests-build: $(BUILD)/bpfredir $(UNIT_BINS) $(TOOL_BINS) $(BUILD)/tests/bpfredir-failpoints \
	newer-build old-builds

# What the reload and upgrade tests load besides this build, made once here, not by each test
# (in a kernel guest that would be a compile under emulation): this tree with other BPF
# instructions, whose load replaces every program ("a newer build"), and the loaders of the
# older commits upgrade.sh upgrades from (tests/tools/old_builds.sh; kept across runs).
newer-build:
	$(Q)$(MAKE) --no-print-directory OUTPUT=$(OUTPUT)/newer BUILD=$(BUILD)/tests/newer BPF_CPU=v2 \
		$(BUILD)/tests/newer/bpfredir

old-builds:
	$(Q)tests/tools/old_builds.sh

$(OUTPUT)/bench/%.bpf.o: tests/bench/%.bpf.c $(VMLINUX) | $(OUTPUT)/bench check-libbpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(CLANG_BPF_SYS_INCLUDES) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(OUTPUT)/bench/%.skel.h: $(OUTPUT)/bench/%.bpf.o | $(OUTPUT)/bench
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/bench/%: tests/bench/%.c tests/bench/*.h tests/unit/*.h $(LOADER_HDRS) $(SKELS) \
		$(BENCH_SKELS) $(LIBBPFREDIR) | $(BUILD)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -I$(OUTPUT)/bench -Itests/unit $(LIBBPF_CFLAGS) $< \
		$(LIBBPFREDIR) $(LIBBPF_LIBS) -o $@

bench-build: $(BUILD)/bpfredir $(BENCH_BINS)

# Every variant side by side in one run; results in .output/bench/ (tests/bench/run.sh).
bench: deps
	$(Q)$(MAKE) bench-build
	$(Q)tests/bench/run.sh

# Installs what is missing (Debian packages; libbpf and bpftool from bookworm-backports on
# Debian 12). Quick when everything is already there.
deps:
	$(Q)scripts/install-deps.sh

test: deps
	$(Q)$(MAKE) -j$$(nproc) tests-build
	$(Q)tests/run.sh

# The suite inside QEMU guests that boot Debian's kernel packages, one guest per kernel in
# KERNELS (tests/kernels/run.sh): all of it, or the quick subset CI runs (tests/run.sh --quick).
# QEMU and the rest are installed only for these.
KERNELS ?= 6.1 6.12

deps-kernels:
	$(Q)scripts/install-deps.sh --kernels

test-kernels: deps-kernels
	$(Q)$(MAKE) -j$$(nproc) tests-build
	$(Q)tests/kernels/run.sh $(KERNELS)

test-kernels-quick: deps-kernels
	$(Q)$(MAKE) -j$$(nproc) tests-build
	$(Q)tests/kernels/run.sh --quick $(KERNELS)

# (The test tools too: tests/lib/, which the demo uses, probes the kernel with them.)
# The Debian package (debian/), built from a copy of the tree so the tree stays clean:
# .output/deb/bpfredir_VERSION_ARCH.deb, checked by lintian. The package build gets none of
# this make's variables (its clean would remove this OUTPUT).
deb: deps
	$(call msg,DEB,$(OUTPUT)/deb)
	$(Q)rm -rf $(OUTPUT)/deb-build $(OUTPUT)/deb && mkdir -p $(OUTPUT)/deb-build/bpfredir $(OUTPUT)/deb
	$(Q)tar -c --exclude=./.output --exclude=./build --exclude=./.git . | \
		tar -x -C $(OUTPUT)/deb-build/bpfredir
	$(Q)cd $(OUTPUT)/deb-build/bpfredir && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		dpkg-buildpackage -us -uc -b >../build.log 2>&1 || { tail -n 30 ../build.log; exit 1; }
	$(Q)mv $(OUTPUT)/deb-build/*.deb $(OUTPUT)/deb/
	$(Q)lintian --fail-on error $(OUTPUT)/deb/*.deb

# The container image, with no registry: a Debian root filesystem (mmdebstrap, bookworm and
# its backports for libbpf) with the package installed in it, imported into podman as
# localhost/bpfredir:VERSION. Its entry point applies a mounted config and follows it
# (scripts/dist/image/entrypoint); deploy/kubernetes/ runs it as a DaemonSet.
IMAGE_VERSION = $(shell dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null)
IMAGE ?= localhost/bpfredir:$(IMAGE_VERSION)
image: deb
	$(call msg,IMAGE,$(IMAGE))
	$(Q)rm -rf $(OUTPUT)/image && mkdir -p $(OUTPUT)/image
	$(Q)mmdebstrap --quiet --variant=apt --include=ca-certificates \
		--customize-hook='copy-in $(OUTPUT)/deb/bpfredir_$(IMAGE_VERSION)_amd64.deb /tmp' \
		--customize-hook='chroot "$$1" apt-get install -y -q -t bookworm-backports \
			/tmp/bpfredir_$(IMAGE_VERSION)_amd64.deb' \
		--customize-hook='copy-in scripts/dist/image/entrypoint /usr/local/bin' \
		--customize-hook='rm -f "$$1"/tmp/*.deb "$$1"/var/cache/apt/*.bin' \
		--customize-hook='rm -rf "$$1"/var/lib/apt/lists/*' \
		bookworm $(OUTPUT)/image/rootfs.tar \
		"deb http://deb.debian.org/debian bookworm main" \
		"deb http://deb.debian.org/debian bookworm-backports main" \
		>$(OUTPUT)/image/build.log 2>&1 || { tail -n 30 $(OUTPUT)/image/build.log; exit 1; }
	$(Q)podman import --quiet --change 'ENTRYPOINT ["/usr/local/bin/entrypoint"]' \
		$(OUTPUT)/image/rootfs.tar $(IMAGE) >/dev/null

# What is shipped beyond the binary, a minute and a half more than make test: the Debian
# package built, installed, used and purged (tests/long/deb.sh), and the image as the
# DaemonSet runs it (tests/long/image.sh).
test-dist: image tests-build
	$(Q)tests/run.sh deb image

# Longer than make test allows: 100,000 cgroup attach / removal cycles, and 1024 cgroups
# attached at once (tests/integration/cgroups.sh with BPFREDIR_TEST_CHURN).
test-churn: deps tests-build
	$(Q)BPFREDIR_TEST_CHURN=$${BPFREDIR_TEST_CHURN:-100000} BPFREDIR_TEST_TIME_SCALE=15 \
		tests/run.sh cgroups

demo: deps
	$(Q)$(MAKE) all $(TOOL_BINS)
	$(Q)scripts/demo.sh

# The synopsis in README.md and bpfredir.8 is written from the binary's help (make docs);
# docs-check fails when it is out of step, or when a man page makes groff warn.
MANPAGES := scripts/dist/bpfredir.8 scripts/dist/bpfredir.conf.5

docs: $(BUILD)/bpfredir
	$(Q)scripts/docs.py $(BUILD)/bpfredir

docs-check: $(BUILD)/bpfredir
	$(Q)scripts/docs.py --check $(BUILD)/bpfredir
	$(Q)for page in $(MANPAGES); do \
		warn=$$(groff -man -Tutf8 -ww -z $$page 2>&1) && test -z "$$warn" || \
			{ echo "$$page: groff warns: $$warn" >&2; exit 1; }; \
	done

# Regenerate the committed vmlinux.h from the running kernel's BTF.
vmlinux:
	$(Q)mkdir -p $(dir $(VMLINUX))
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $(VMLINUX).tmp && \
		mv $(VMLINUX).tmp $(VMLINUX)

# The unit points at the installed binary and config; DESTDIR stages a package.
install: $(BUILD)/bpfredir
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -D -m 0755 $(BUILD)/bpfredir $(DESTDIR)$(SBINDIR)/bpfredir
	$(Q)install -D -m 0644 scripts/dist/bpfredir.8 $(DESTDIR)$(MANDIR)/man8/bpfredir.8
	$(Q)install -D -m 0644 scripts/dist/bpfredir.conf.5 $(DESTDIR)$(MANDIR)/man5/bpfredir.conf.5
	$(Q)install -D -m 0644 scripts/dist/bpfredir.conf.example \
		$(DESTDIR)$(DOCDIR)/bpfredir.conf.example
	$(Q)install -D -m 0644 scripts/dist/bpfredir.bash-completion \
		$(DESTDIR)$(COMPLETIONDIR)/bpfredir
	$(Q)mkdir -p $(DESTDIR)$(UNITDIR)
	$(Q)for unit in $(UNITS); do \
		sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
			scripts/dist/$$unit > $(DESTDIR)$(UNITDIR)/$$unit && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	$(Q)mkdir -p $(DESTDIR)$(HOOKSDIR)
	$(Q)for hook in $(OCI_HOOKS); do \
		sed -e 's|@SBINDIR@|$(SBINDIR)|g' scripts/dist/oci/$$hook \
			> $(DESTDIR)$(HOOKSDIR)/$$hook && \
		chmod 0644 $(DESTDIR)$(HOOKSDIR)/$$hook || exit 1; \
	done

# Leaves /etc/bpfredir.conf alone: it is the admin's.
uninstall:
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	$(Q)rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT) $(BUILD)

.DELETE_ON_ERROR:
.SECONDARY:
