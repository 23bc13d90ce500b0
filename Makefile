# postern - GNU Makefile.  Objects go to build/, never beside the sources.
#
#   make [all]            build every program into build/bin/
#   make check            build and run the TAP tests in t/ with prove
#   make check SANITIZE=1 the same, built with ASan and UBSan (into build-san/)
#   make run [PORT=N]     build and start a self-contained instance in ./run/
#   make install          PREFIX=/usr/local DESTDIR= (FHS layout)
#   make fuzz             run every fuzz target for FUZZ_SECONDS (default 60)
#   make fuzz-merge       minimise fuzz/seeds/ with what `make fuzz` found
#   make bench            the benchmark suite against Postfix (bench/)
#   make bench-lookup     lookups through the lookup service vs in-process
#   make bench-maps       inbound with seed 004's maps, postern beside Postfix (root)
#   make clean
#
# Programs: bin/NAME.c is a one-file program; bin/NAME/*.c a program whose
# parts are too many for one file.  lib/*/*.c and maps/*.c form libpostern.a,
# from which the linker takes only what each program uses.

PREFIX    ?= /usr/local
SBINDIR   ?= $(PREFIX)/sbin
LIBEXECDIR?= $(PREFIX)/libexec/postern
MANDIR    ?= $(PREFIX)/share/man
SYSCONFDIR?= /etc/postern
UNITDIR   ?= /lib/systemd/system
QUEUEDIR  ?= /var/spool/postern
SETGID_GROUP ?= postern-drop
DESTDIR   ?=

CC        ?= cc
ifeq ($(SANITIZE),1)
BUILD     ?= build-san
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       ?= -O1 -g
else
BUILD     ?= build
SANFLAGS  :=
OPT       ?= -O2 -g
endif

PKGS      := openssl libsystemd libsasl2 libpcre2-8 libbsd libpq libmariadb sqlite3 ldap zlib libcurl
# ./deps: a build needs only the build set; `make check` and `make fuzz`
# also the test tools, `make bench` also Postfix and the profilers (deps)
DEPS_SETS := $(if $(filter check fuzz fuzz-build fuzz-merge,$(MAKECMDGOALS)),--test) \
             $(if $(filter bench,$(MAKECMDGOALS)),--bench)
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
DEPS_OK   := $(shell ./deps $(DEPS_SETS) >&2 && pkg-config --exists $(PKGS) && test -f /usr/include/cdb.h && test -f /usr/include/unbound.h && echo yes)
ifneq ($(DEPS_OK),yes)
$(error missing Debian packages: see the deps line above (as root, make installs them))
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
# libunbound (lib/net/dns.c) without pkg-config: its .pc file names
# libevent for static links, whose .pc Debian does not ship with it
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lcdb -lunbound

VERSION   := 0.1
PATH_DEFS := -DPOSTERN_VERSION='"$(VERSION)"' \
             -DDEF_CONFIG_DIR='"$(SYSCONFDIR)"' \
             -DDEF_DAEMON_DIR='"$(LIBEXECDIR)"' \
             -DDEF_COMMAND_DIR='"$(SBINDIR)"' \
             -DDEF_QUEUE_DIR='"$(QUEUEDIR)"'
# lib/ is in layers, each a folder; a file includes only from its own layer
# and those below it (t/01-layers.t): util < maps < conf < mail < net
LAYER_INC := -Ilib/util -Imaps -Ilib/conf -Ilib/mail -Ilib/net
CPPFLAGS  += -D_GNU_SOURCE $(LAYER_INC) $(PKG_CFLAGS) $(PATH_DEFS)
# the compiled-in paths and build flags: when they change (make install
# PREFIX=/usr after a plain make), every object is rebuilt
FLAGS_STAMP := $(BUILD)/.flags
$(shell mkdir -p $(BUILD) && echo '$(subst ','"'"',$(PATH_DEFS) $(CFLAGS) $(SANFLAGS))' | cmp -s - $(FLAGS_STAMP) 2>/dev/null || echo '$(subst ','"'"',$(PATH_DEFS) $(CFLAGS) $(SANFLAGS))' > $(FLAGS_STAMP))
CFLAGS    += -std=c17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wformat=2 -fstack-protector-strong \
             $(OPT) $(SANFLAGS) -MMD -MP
LDFLAGS   += $(SANFLAGS) -Wl,--as-needed -Wl,-z,relro,-z,now
LDLIBS    += $(PKG_LIBS)
# Programs started per connection or per message are linked statically, as
# static-pie so that ASLR stays: a fork of the smtpd zygote or an exec of
# the injector then maps one object instead of six, and postern-accept's
# connection rate rose by 40 % (bench/README).  They use only these
# libraries, and never the name service (getpwnam, getaddrinfo, ...): glibc
# would load the system's libnss_*.so into them at run time, and
# libnss_systemd crashed smtpd that way.  unix: tables and every proxy:
# table reach them through the lookup service, postern-lookup
# (doc/lookup.md); the linker's warning about such a call is an error here
# (--fatal-warnings), and t/02-static-nss.t reads their symbols.  ASan cannot
# link statically, so SANITIZE=1 builds them dynamically.
STATIC_PROGS ?= postern-smtpd postern-queue postern-rewrite postern-virtual postern-bounce postern-local postern-pipe
STATIC_LIBS  := -lpcre2-8 -lbsd -lmd -lcdb
ifeq ($(SANITIZE),1)
STATIC_PROGS :=
endif
# smtpd links OpenSSL statically too; --wrap sends libcrypto's calls of the
# name service and of dlopen to bin/postern-smtpd/nolookup.c
STATIC_TLS_PROGS := postern-smtpd
STATIC_TLS_LIBS  := -lssl -lcrypto
STATIC_TLS_WRAP  := $(foreach f,getaddrinfo freeaddrinfo getnameinfo gethostbyname getservbyname \
                      dlopen dlsym dlclose dlerror dladdr,-Wl,--wrap=$(f))
# Its segments start on 2 MB boundaries (max-page-size), so that its
# zygote can move code and constants whole into huge pages
# (lib/util/hugetext.h); the file grows by the padding, not the memory.
STATIC_TLS_ALIGN := -Wl,-z,max-page-size=0x200000
link_flags = $(if $(filter $(1),$(STATIC_PROGS)),-static-pie -Wl$(comma)--fatal-warnings \
               $(if $(filter $(1),$(STATIC_TLS_PROGS)),$(STATIC_TLS_WRAP) $(STATIC_TLS_ALIGN)))
link_libs  = $(if $(filter $(1),$(STATIC_PROGS)),$(if $(filter $(1),$(STATIC_TLS_PROGS)),$(STATIC_TLS_LIBS)) \
               $(STATIC_LIBS),$(LDLIBS))

LIB_SRC   := $(wildcard lib/*/*.c maps/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIBA      := $(BUILD)/libpostern.a

ONE_SRC   := $(wildcard bin/*.c)
MULTI_DIR := $(sort $(patsubst %/,%,$(dir $(wildcard bin/*/*.c))))
PROGS     := $(sort $(notdir $(ONE_SRC:.c=) $(MULTI_DIR)))
PROG_BIN  := $(PROGS:%=$(BUILD)/bin/%)
# commands for people go to sbin; the rest are per-connection or per-delivery
# programs that other programs start, in libexec
SBIN_PROGS := postern sendmail
LINKS     := $(if $(filter sendmail,$(PROGS)),mailq newaliases)

# unit tests: t/unit/NAME.c is a program printing TAP, linked with
# libpostern.a into $(BUILD)/t/NAME; a t/NN-name.t runs it (see t/unit/tap.h)
UNIT_SRC  := $(wildcard t/unit/*.c)
UNIT_BIN  := $(UNIT_SRC:t/unit/%.c=$(BUILD)/t/%)

FUZZ_SRC  := $(wildcard fuzz/*.c)
FUZZ_BIN  := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all check run install clean fuzz fuzz-build fuzz-merge bench bench-lookup bench-maps
# objects are kept (never deleted as intermediate files), so that a second
# make, or `make check` after `make run`, rebuilds nothing
.SECONDARY:
all: $(PROG_BIN) $(LINKS:%=$(BUILD)/bin/%) $(BUILD)/bin/postern-lmtp

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# a one-file program
$(BUILD)/bin/%: $(BUILD)/obj/bin/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(call link_flags,$*) -o $@ $< $(LIBA) $(call link_libs,$*)

# a program of several files: bin/NAME/*.c
define multi_prog
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bin/$(1)/*.c)) $(LIBA)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) $$(call link_flags,$(1)) -o $$@ $$(filter %.o,$$^) $(LIBA) $$(call link_libs,$(1))
endef
$(foreach p,$(MULTI_DIR:bin/%=%),$(eval $(call multi_prog,$(p))))

# mailq and newaliases are sendmail under other names, as everywhere
$(BUILD)/bin/mailq $(BUILD)/bin/newaliases: | $(BUILD)/bin/sendmail
	ln -sf sendmail $@

# postern-lmtp is postern-smtp under the name that makes it speak LMTP
# (Postfix's lmtp(8) is its smtp(8) too)
$(BUILD)/bin/postern-lmtp: | $(BUILD)/bin/postern-smtp
	ln -sf postern-smtp $@

$(BUILD)/t/%: $(BUILD)/obj/t/unit/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# test tools: the power-loss test's FUSE file system (t/lib/crashfs.c), and
# an injector built from lib/mail/queuewriter.c without the fdatasync of its
# commit, so that t/88-power-loss.t shows it catches a lost message
TEST_TOOLS := $(BUILD)/t/crashfs $(BUILD)/t/weak/postern-queue
$(BUILD)/t/crashfs: t/lib/crashfs.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -Wall -Wextra -Werror $(OPT) $(SANFLAGS) $$(pkg-config --cflags fuse3) -o $@ $< $$(pkg-config --libs fuse3)
$(BUILD)/t/weak/queuewriter.c: lib/mail/queuewriter.c
	@mkdir -p $(dir $@)
	sed 's/"fsync queue file", (w->slot_new ? fsync(w->fd) : fdatasync(w->fd)) < 0)/"fsync queue file", 0)/' $< > $@
	@grep -q '"fsync queue file", 0)' $@ || { echo "weak injector: no fdatasync to remove in $<" >&2; rm -f $@; exit 1; }
$(BUILD)/t/weak/queuewriter.o: $(BUILD)/t/weak/queuewriter.c $(FLAGS_STAMP)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<
$(BUILD)/t/weak/postern-queue: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bin/postern-queue/*.c)) \
                               $(BUILD)/t/weak/queuewriter.o $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBA) $(LDLIBS)

check: all $(UNIT_BIN) $(TEST_TOOLS)
	./t/run-tests $(BUILD)

run: all
	@./t/make-run $(BUILD)

# fuzz targets: libFuzzer with clang; `make check` runs each briefly through
# t/fuzz.t, `make fuzz` for FUZZ_SECONDS each
FUZZ_SECONDS ?= 60
comma     := ,
FUZZ_CC   ?= clang
FUZZ_FLAGS := -std=c17 -g -O1 -D_GNU_SOURCE $(LAYER_INC) $(PKG_CFLAGS) \
              -fsanitize=fuzzer,address,undefined -DDEF_CONFIG_DIR='"/nonexistent"' \
              -DDEF_DAEMON_DIR='"/nonexistent"' -DDEF_COMMAND_DIR='"/nonexistent"' \
              -DDEF_QUEUE_DIR='"/nonexistent"' -DPOSTERN_VERSION='"$(VERSION)"'
# the library is compiled once for all fuzz targets (instrumented, without
# the fuzzer's main), then each target links against it
FUZZ_OBJ  := $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)
FUZZ_LIBA := $(BUILD)/fuzzobj/libpostern-fuzz.a
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(subst fuzzer$(comma),fuzzer-no-link$(comma),$(FUZZ_FLAGS)) -MMD -MP -c -o $@ $<
$(FUZZ_LIBA): $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/fuzz/%: fuzz/%.c $(FUZZ_LIBA)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -MMD -MP -MF $@.d -o $@ $< $(FUZZ_LIBA) $(PKG_LIBS)
fuzz-build: $(FUZZ_BIN)
# crashes, leaks and slow units go to BUILD/fuzz/artifacts-NAME/, never to
# the working directory
fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do \
	    name=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$name $(BUILD)/fuzz/artifacts-$$name; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	        -artifact_prefix=$(BUILD)/fuzz/artifacts-$$name/ \
	        $(BUILD)/fuzz/corpus-$$name fuzz/seeds/$$name || exit 1; \
	done
# minimise the committed seeds: what the last `make fuzz` found that adds
# coverage joins them, the rest goes (libFuzzer -merge=1)
fuzz-merge: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do \
	    name=$$(basename $$f); rm -rf $(BUILD)/fuzz/merge-$$name; \
	    mkdir -p $(BUILD)/fuzz/merge-$$name $(BUILD)/fuzz/corpus-$$name $(BUILD)/fuzz/artifacts-$$name; \
	    $$f -merge=1 -max_len=65536 -artifact_prefix=$(BUILD)/fuzz/artifacts-$$name/ \
	        $(BUILD)/fuzz/merge-$$name fuzz/seeds/$$name $(BUILD)/fuzz/corpus-$$name 2>/dev/null || exit 1; \
	    rm -rf fuzz/seeds/$$name && mv $(BUILD)/fuzz/merge-$$name fuzz/seeds/$$name; \
	    echo "fuzz-merge: $$name: $$(ls fuzz/seeds/$$name | wc -l) seeds"; \
	done

bench: all
	./bench/run $(BUILD)

# the lookup service's figure alone (bench/README): seconds, no root
bench-lookup: all
	./bench/lookup $(BUILD)

# inbound with seed 004's tables in both MTAs (bench/README, "Seed 004's maps")
bench-maps: all
	./bench/maps $(BUILD)

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(MANDIR)/man1 \
	           $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
	           $(DESTDIR)$(SYSCONFDIR)
	for p in $(PROGS); do \
	    case " $(SBIN_PROGS) " in *" $$p "*) d=$(SBINDIR);; *) d=$(LIBEXECDIR);; esac; \
	    install -m 755 $(BUILD)/bin/$$p $(DESTDIR)$$d/$$p; \
	done
	for l in $(LINKS); do ln -sf sendmail $(DESTDIR)$(SBINDIR)/$$l; done
	ln -sf postern-smtp $(DESTDIR)$(LIBEXECDIR)/postern-lmtp
	@# the injector is set-group-id to setgid_group (doc/privileges.md)
	@q=$(DESTDIR)$(LIBEXECDIR)/postern-queue; \
	if [ -f "$$q" ]; then \
	    if [ "$$(id -u)" = 0 ] && getent group $(SETGID_GROUP) >/dev/null; then \
	        chgrp $(SETGID_GROUP) "$$q" && chmod 2755 "$$q" && \
	        echo "postern-queue: set-group-id $(SETGID_GROUP)"; \
	    else \
	        echo "postern-queue is NOT set-group-id: local users cannot queue mail until"; \
	        echo "root creates the group $(SETGID_GROUP) (groupadd -r $(SETGID_GROUP)) and runs:"; \
	        echo "    chgrp $(SETGID_GROUP) $$q && chmod 2755 $$q"; \
	    fi; \
	fi
	for m in doc/*.[158]; do \
	    [ -f "$$m" ] || continue; s=$${m##*.}; \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; \
	done
	# units name the default paths; point them at this install's
	for u in units/*.service units/*.socket units/*.path units/*.timer; do \
	    [ -f "$$u" ] || continue; \
	    sed -e 's|/usr/local/libexec/postern|$(LIBEXECDIR)|g' -e 's|/var/spool/postern|$(QUEUEDIR)|g' \
	        -e 's|/usr/local/sbin/|$(SBINDIR)/|g' \
	        $$u > $(DESTDIR)$(UNITDIR)/$${u##*/} && chmod 644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
