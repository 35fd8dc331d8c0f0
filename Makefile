# snapset — plain GNU make.
#
#   make                 build snapsetd and snapsetctl into $(BUILDDIR)
#   make check           every test tier: unit, man pages, fuzz (short), integration (root), vm
#   make check SANITIZE=1   the same with ASan+UBSan, built into build-sanitize/
#   make check-unit | check-integration | check-fuzz | check-vm | check-man
#   make fuzz            run the libFuzzer target until stopped (FUZZ_SECONDS=N to bound it)
#   make bench           the benchmark into bench/results/ (bench/README.md); bench-smoke: its
#                        smoke run (also part of check: VM test 95-bench, test-bench.py)
#   make install         honours DESTDIR, PREFIX, SBINDIR, BINDIR, MANDIR, SYSTEMDUNITDIR, ...
#
# Sources are found by directory, so adding a file never needs a Makefile edit:
#   common/*.c                 -> libsnapset-common.a (linked into both programs)
#   daemon/*.c daemon/*/*.c    -> snapsetd   (daemon/snapsetd.c holds main())
#   client/*.c                 -> snapsetctl (client/snapsetctl.c holds main())
#   tests/unit/test-*.c        -> one Check suite each, suite_<name>(), run by check-unit

VERSION := 0.1

PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
SYSCONFDIR ?= /etc
RUNSTATEDIR ?= /run
LOCALSTATEDIR ?= /var
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSTEMDGENERATORDIR ?= $(PREFIX)/lib/systemd/system-generators
CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
BASHCOMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
UDEVRULESDIR ?= $(PREFIX)/lib/udev/rules.d
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
VARLINKDIR ?= $(DATADIR)/varlink

SANITIZE ?=
ifeq ($(SANITIZE),1)
BUILDDIR ?= build-sanitize
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILDDIR ?= build
SANITIZE_FLAGS :=
endif
B := $(BUILDDIR)

LIBS_COMMON := json-c
LIBS_DAEMON := libsystemd json-c devmapper uuid mount blkid
LIBS_CLIENT := json-c

CFLAGS ?= -O2 -g
# -Wno-format-truncation: messages are cut to fixed buffers on purpose (events are queued in
# preallocated memory inside the freeze window).
CFLAGS += -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter -Wno-format-truncation \
	-Wmissing-prototypes -Werror=implicit-function-declaration -Werror=return-type \
	-fno-strict-aliasing -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
	-MMD -MP -Icommon -I$(B)/gen $(SANITIZE_FLAGS)
CPPFLAGS += -D_GNU_SOURCE -DSNAPSET_VERSION='"$(VERSION)"' \
	-DSNAPSET_SYSCONFDIR='"$(SYSCONFDIR)"' -DSNAPSET_RUNSTATEDIR='"$(RUNSTATEDIR)"' \
	-DSNAPSET_LOCALSTATEDIR='"$(LOCALSTATEDIR)"' -DSNAPSET_LIBDIR='"$(PREFIX)/lib"'
LDFLAGS += $(SANITIZE_FLAGS)

pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1))
pc_libs = $(shell $(PKG_CONFIG) --libs $(1))

COMMON_SRC := $(sort $(wildcard common/*.c))
DAEMON_SRC := $(sort $(wildcard daemon/*.c daemon/*/*.c))
DAEMON_MAIN := daemon/snapsetd.c
GENERATOR_MAIN := daemon/snapset-generator.c
CLIENT_SRC := $(sort $(wildcard client/*.c))
CLIENT_MAIN := client/snapsetctl.c
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
UNIT_SUITES := $(patsubst tests/unit/test-%.c,%,$(wildcard tests/unit/test-*.c))

COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/%.o)
DAEMON_OBJ := $(filter-out $(B)/$(DAEMON_MAIN:.c=.o) $(B)/$(GENERATOR_MAIN:.c=.o),$(DAEMON_SRC:%.c=$(B)/%.o))
CLIENT_OBJ := $(filter-out $(B)/$(CLIENT_MAIN:.c=.o),$(CLIENT_SRC:%.c=$(B)/%.o))
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o)

# The interface definitions are embedded into the programs at build time.
IDL := common/io.snapset.Manager.varlink common/org.varlink.service.varlink common/io.snapset.Provider.varlink
IDL_INC := $(IDL:common/%=$(B)/gen/%.inc)

PROGRAMS := $(B)/snapsetd $(B)/snapsetctl $(B)/snapset-generator
UNITS := $(B)/systemd/snapsetd.service $(B)/systemd/snapsetd.socket $(B)/systemd/snapset-rescue.service \
	$(B)/systemd/snapset-activate.service $(B)/systemd/snapset-create@.service $(B)/systemd/snapset-prune.service \
	systemd/snapset-create@.timer systemd/snapset-prune.timer

ifneq ($(V),1)
Q := @
quiet = @printf '  %-8s %s\n' '$(1)' '$(2)';
endif

# The VM tier's provider driver is built with everything else, so that an interface change that
# breaks it fails the build on the host, not a test inside the VM.
TEST_PROGRAMS := $(B)/provider-driver $(B)/bench-floor

all: $(PROGRAMS) $(UNITS) $(TEST_PROGRAMS)

$(B)/gen/%.varlink.inc: common/%.varlink tools/embed-text
	@mkdir -p $(@D)
	$(call quiet,EMBED,$@) tools/embed-text $< > $@.tmp && mv $@.tmp $@

$(B)/common/%.o: common/%.c $(B)/flags | $(IDL_INC)
	@mkdir -p $(@D)
	$(call quiet,CC,$@) $(CC) $(CPPFLAGS) $(CFLAGS) $(call pc_cflags,$(LIBS_COMMON)) -c -o $@ $<

$(B)/daemon/%.o: daemon/%.c $(B)/flags | $(IDL_INC)
	@mkdir -p $(@D)
	$(call quiet,CC,$@) $(CC) $(CPPFLAGS) $(CFLAGS) -Idaemon $(call pc_cflags,$(LIBS_DAEMON)) -c -o $@ $<

$(B)/client/%.o: client/%.c $(B)/flags | $(IDL_INC)
	@mkdir -p $(@D)
	$(call quiet,CC,$@) $(CC) $(CPPFLAGS) $(CFLAGS) -Iclient $(call pc_cflags,$(LIBS_CLIENT)) -c -o $@ $<

$(B)/tests/unit/%.o: tests/unit/%.c $(B)/gen/suites.h $(B)/flags | $(IDL_INC)
	@mkdir -p $(@D)
	$(call quiet,CC,$@) $(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -Idaemon -Iclient -Itests/unit \
		$(call pc_cflags,check $(LIBS_DAEMON)) -c -o $@ $<

# Each archive also depends on a file holding its member list, rewritten only when the list
# changes, so that removing a source file rebuilds the archive without the stale object.
shell_quote = '$(subst ','\'',$(1))'
objlist = @mkdir -p $(B); printf '%s\n' $(call shell_quote,$(2)) | cmp -s - $(1) || printf '%s\n' $(call shell_quote,$(2)) > $(1)
$(B)/common.objs: FORCE ; $(call objlist,$@,$(COMMON_OBJ))
# Objects are rebuilt when the compiler or its flags change (e.g. SANITIZE=1 into the same BUILDDIR).
$(B)/flags: FORCE ; $(call objlist,$@,$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS))
# The units name installed paths: rebuilt when PREFIX and friends change.
$(B)/paths: FORCE ; $(call objlist,$@,$(SBINDIR) $(BINDIR) $(RUNSTATEDIR) $(SYSCONFDIR) $(LOCALSTATEDIR))
$(B)/daemon.objs: FORCE ; $(call objlist,$@,$(DAEMON_OBJ))
$(B)/client.objs: FORCE ; $(call objlist,$@,$(CLIENT_OBJ))

$(B)/libsnapset-common.a: $(COMMON_OBJ) $(B)/common.objs
	$(call quiet,AR,$@) rm -f $@ && $(AR) rcs $@ $(COMMON_OBJ)

$(B)/libsnapsetd.a: $(DAEMON_OBJ) $(B)/daemon.objs
	$(call quiet,AR,$@) rm -f $@ && $(AR) rcs $@ $(DAEMON_OBJ)

$(B)/snapsetd: $(B)/$(DAEMON_MAIN:.c=.o) $(B)/libsnapsetd.a $(B)/libsnapset-common.a
	$(call quiet,LD,$@) $(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(LIBS_DAEMON))

$(B)/snapset-generator: $(B)/$(GENERATOR_MAIN:.c=.o) $(B)/libsnapsetd.a $(B)/libsnapset-common.a
	$(call quiet,LD,$@) $(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(LIBS_DAEMON))

$(B)/libsnapsetctl.a: $(CLIENT_OBJ) $(B)/client.objs
	$(call quiet,AR,$@) rm -f $@ && $(AR) rcs $@ $(CLIENT_OBJ)

$(B)/snapsetctl: $(B)/$(CLIENT_MAIN:.c=.o) $(B)/libsnapsetctl.a $(B)/libsnapset-common.a
	$(call quiet,LD,$@) $(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(LIBS_CLIENT))

$(B)/tests/vm/%.o: tests/vm/%.c $(B)/flags | $(IDL_INC)
	@mkdir -p $(@D)
	$(call quiet,CC,$@) $(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -Idaemon -Idaemon/providers \
		$(call pc_cflags,$(LIBS_DAEMON)) -c -o $@ $<

$(B)/provider-driver: $(B)/tests/vm/provider-driver.o $(B)/libsnapsetd.a $(B)/libsnapset-common.a
	$(call quiet,LD,$@) $(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(LIBS_DAEMON))

$(B)/bench/%.o: bench/%.c $(B)/flags | $(IDL_INC)
	@mkdir -p $(@D)
	$(call quiet,CC,$@) $(CC) $(CPPFLAGS) $(CFLAGS) -Idaemon -Idaemon/providers \
		$(call pc_cflags,$(LIBS_DAEMON)) -c -o $@ $<

$(B)/bench-floor: $(B)/bench/floor.o $(B)/libsnapsetd.a $(B)/libsnapset-common.a
	$(call quiet,LD,$@) $(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(LIBS_DAEMON))

# One line per tests/unit/test-NAME.c; check_main.c adds every suite listed here.
$(B)/gen/suites.h: $(wildcard tests/unit/test-*.c) Makefile
	@mkdir -p $(@D)
	$(call quiet,GEN,$@) for s in $(subst -,_,$(UNIT_SUITES)); do echo "SUITE($$s)"; done > $@.tmp && mv $@.tmp $@

$(B)/check-unit: $(UNIT_OBJ) $(B)/libsnapsetd.a $(B)/libsnapsetctl.a $(B)/libsnapset-common.a
	$(call quiet,LD,$@) $(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,check $(LIBS_DAEMON))

$(B)/systemd/%: systemd/%.in Makefile $(B)/paths
	@mkdir -p $(@D)
	$(call quiet,GEN,$@) sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
		-e 's|@RUNSTATEDIR@|$(RUNSTATEDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		-e 's|@LOCALSTATEDIR@|$(LOCALSTATEDIR)|g' $< > $@

# ---------------------------------------------------------------- tests

# Every tier prints "N passed, N failed"; tests/run-tiers adds them up.
check: all $(B)/check-unit
	$(Q)BUILDDIR=$(B) tests/run-tiers $(CHECK_TIERS)

check-unit: $(B)/check-unit
	$(Q)BUILDDIR=$(B) tests/run-tiers unit

check-man:
	$(Q)BUILDDIR=$(B) tests/run-tiers man

check-integration: all
	$(Q)BUILDDIR=$(B) tests/run-tiers integration

check-fuzz:
	$(Q)BUILDDIR=$(B) tests/run-tiers fuzz

check-vm:
	$(Q)BUILDDIR=$(B) tests/run-tiers vm

check-valgrind: $(B)/check-unit
	$(Q)CK_FORK=no valgrind -q --leak-check=full --error-exitcode=1 $(B)/check-unit

demo: all
	$(Q)BUILDDIR=$(B) tools/demo

# The benchmark (bench/README.md); not part of check, but its smoke run is (VM test 95-bench and
# the integration tier's test-bench.py).
bench: all
	$(Q)BUILDDIR=$(B) bench/run

bench-smoke: all
	$(Q)BUILDDIR=$(B) bench/run --smoke

FUZZ_SECONDS ?= 0
fuzz:
	$(Q)BUILDDIR=$(B) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run

# ---------------------------------------------------------------- install

install: all
	install -Dm0755 $(B)/snapsetd "$(DESTDIR)$(SBINDIR)/snapsetd"
	install -Dm0755 $(B)/snapsetctl "$(DESTDIR)$(BINDIR)/snapsetctl"
	install -Dm0755 $(B)/snapset-generator "$(DESTDIR)$(SYSTEMDGENERATORDIR)/snapset-generator"
	install -dm0755 "$(DESTDIR)$(SYSCONFDIR)/snapset/sets.d" "$(DESTDIR)$(SYSCONFDIR)/snapset/hooks.d"
	install -Dm0644 -t "$(DESTDIR)$(SYSTEMDUNITDIR)" $(UNITS)
	install -Dm0644 systemd/snapset.tmpfiles "$(DESTDIR)$(TMPFILESDIR)/snapset.conf"
	install -Dm0644 -t "$(DESTDIR)$(UDEVRULESDIR)" systemd/60-snapset.rules
	install -Dm0644 -t "$(DESTDIR)$(CATALOGDIR)" systemd/snapset.catalog
	install -Dm0644 completion/snapsetctl.bash "$(DESTDIR)$(BASHCOMPLETIONDIR)/snapsetctl"
	install -Dm0644 -t "$(DESTDIR)$(MANDIR)/man8" man/snapsetd.8 man/snapsetctl.8
	install -Dm0644 -t "$(DESTDIR)$(MANDIR)/man5" man/snapsetd.conf.5 man/snapset-sets.5
	install -Dm0644 -t "$(DESTDIR)$(MANDIR)/man7" man/snapset-provider.7 man/io.snapset.Manager.7
	install -Dm0644 -t "$(DESTDIR)$(VARLINKDIR)" common/io.snapset.Manager.varlink common/io.snapset.Provider.varlink
	install -dm0755 "$(DESTDIR)$(PREFIX)/lib/snapset/providers.d" "$(DESTDIR)$(SYSCONFDIR)/snapset/providers.d"
	install -Dm0644 systemd/snapsetd.conf "$(DESTDIR)$(SYSCONFDIR)/snapset/snapsetd.conf.example"

uninstall:
	rm -f "$(DESTDIR)$(SBINDIR)/snapsetd" "$(DESTDIR)$(BINDIR)/snapsetctl" \
		"$(DESTDIR)$(SYSTEMDUNITDIR)/snapsetd.service" "$(DESTDIR)$(SYSTEMDUNITDIR)/snapsetd.socket" \
		"$(DESTDIR)$(SYSTEMDUNITDIR)/snapset-rescue.service" "$(DESTDIR)$(SYSTEMDUNITDIR)/snapset-activate.service" \
		"$(DESTDIR)$(TMPFILESDIR)/snapset.conf" "$(DESTDIR)$(UDEVRULESDIR)/60-snapset.rules" \
		"$(DESTDIR)$(MANDIR)/man8/snapsetd.8" "$(DESTDIR)$(MANDIR)/man8/snapsetctl.8" \
		"$(DESTDIR)$(MANDIR)/man5/snapsetd.conf.5" "$(DESTDIR)$(MANDIR)/man7/snapset-provider.7" "$(DESTDIR)$(MANDIR)/man7/io.snapset.Manager.7" \
		"$(DESTDIR)$(VARLINKDIR)/io.snapset.Manager.varlink" "$(DESTDIR)$(VARLINKDIR)/io.snapset.Provider.varlink" \
		"$(DESTDIR)$(SYSCONFDIR)/snapset/snapsetd.conf.example" "$(DESTDIR)$(CATALOGDIR)/snapset.catalog" \
		"$(DESTDIR)$(BASHCOMPLETIONDIR)/snapsetctl" "$(DESTDIR)$(SYSTEMDGENERATORDIR)/snapset-generator" \
		"$(DESTDIR)$(MANDIR)/man5/snapset-sets.5" "$(DESTDIR)$(SYSTEMDUNITDIR)/snapset-create@.service" \
		"$(DESTDIR)$(SYSTEMDUNITDIR)/snapset-create@.timer" "$(DESTDIR)$(SYSTEMDUNITDIR)/snapset-prune.service" \
		"$(DESTDIR)$(SYSTEMDUNITDIR)/snapset-prune.timer"

clean:
	rm -rf build build-sanitize build-fuzz

.PHONY: FORCE all check check-unit check-man check-integration check-fuzz check-vm check-valgrind \
	bench bench-smoke demo fuzz install uninstall clean
.DELETE_ON_ERROR:
.SECONDARY: $(IDL_INC)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
