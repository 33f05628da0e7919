# nqrust front door. `make run` and `make test` work on a fresh Debian 12
# machine as root: they install what is missing, build, and go.
BUILD      ?= build
ASAN_BUILD ?= build-asan
PYTHON     ?= /usr/bin/python3
MESON_OPTS ?=

.PHONY: all deps test-deps web-deps build asan run stop test unit integration valgrind \
	banned check-length check-format fuzz bench bench-clone bench-clone-cache bench-fsync bench-vms bench-snapshot bench-bridge clean \
	browser demo-image

all: build

deps:
	@scripts/deps.sh build run

test-deps:
	@scripts/deps.sh build run test

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)

build: deps $(BUILD)/build.ninja web-deps
	ninja -C $(BUILD)

asan: test-deps $(ASAN_BUILD)/build.ninja web-deps
	ninja -C $(ASAN_BUILD)

# The UI's third-party files (xterm.js, pinned in web/package-lock.json)
# from the npm registry at build time; the manager serves them from
# web/node_modules, nothing is fetched at run time.
web-deps:
	@[ -f web/node_modules/@xterm/xterm/lib/xterm.js ] || \
		(cd web && npm ci --no-audit --no-fund)

# Start agent + manager on localhost with the embedded database.
run: build demo-image
	@scripts/run-local.sh start $(BUILD)

# A small bootable image in the agent's default image dir (cached there).
# Exit 3 (no kernel package reachable) leaves VMs without a demo image.
demo-image:
	@scripts/demo-image.sh /var/lib/nqrust/images || [ $$? -eq 3 ]

stop:
	@scripts/run-local.sh stop $(BUILD)

banned:
	@scripts/check-banned.sh

# Functions over 80 lines and files over 600 lines under src/ (not yet part
# of `make test`: the tree is being split to pass it).
check-length:
	@scripts/check-length.sh

# clang-format --dry-run --Werror on the C files changed by the last commit
# plus those listed in scripts/format-checked.txt (the whole tree).
# FORMAT_BASE=<rev> checks the files changed since <rev> instead.
check-format:
	@scripts/check-format.sh $(FORMAT_BASE)

# A build dir configured before cmocka was installed (by `make run`) has no
# unit tests yet: reconfigure it once.
unit: test-deps $(BUILD)/build.ninja
	@meson introspect $(BUILD) --targets | grep -q '"test_validate"' || \
		meson setup --reconfigure $(BUILD) $(MESON_OPTS)
	ninja -C $(BUILD)
	meson test -C $(BUILD) --suite unit --print-errorlogs

valgrind: unit
	meson test -C $(BUILD) --suite unit --print-errorlogs \
		--wrapper 'valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --quiet'

# Integration tests run against the ASan/UBSan build of every daemon.
integration: asan
	NQRUST_BUILD_DIR=$(CURDIR)/$(ASAN_BUILD) $(PYTHON) -m pytest -q -ra \
		-p no:cacheprovider tests/integration

test: test-deps banned check-length check-format
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory asan
	meson test -C $(ASAN_BUILD) --suite unit --print-errorlogs
	$(MAKE) --no-print-directory valgrind
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory browser

# The web UI in headless Debian Chromium (playwright-core from npm, pinned by
# tests/browser/package-lock.json) against real smbd, agent and manager.
# Screenshots go to $(BUILD)/screenshots.
browser: test-deps $(BUILD)/build.ninja web-deps
	ninja -C $(BUILD)
	@[ -d tests/browser/node_modules ] || \
		(cd tests/browser && npm ci --no-audit --no-fund)
	NQRUST_BUILD_DIR=$(CURDIR)/$(BUILD) PYTHON=$(PYTHON) node --test tests/browser/

# A short libFuzzer run of every target in tests/fuzz (FUZZ_SECONDS each).
FUZZ_SECONDS ?= 20
fuzz: test-deps
	@mkdir -p $(BUILD)/fuzz
	@for f in tests/fuzz/fuzz_*.c; do \
		n=$$(basename $$f .c); \
		clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
			-fno-sanitize-recover=undefined -Isrc $$f src/common/validate.c \
			src/common/validate_opts.c src/common/nq_error.c src/common/tls_fp.c -ljansson \
			-o $(BUILD)/fuzz/$$n || exit 1; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		mkdir -p $(BUILD)/fuzz/corpus-$$n; \
		$(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus-$$n \
			> $(BUILD)/fuzz/$$n.log 2>&1 || { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
		tail -1 $(BUILD)/fuzz/$$n.log; \
	done

# Benchmarks against a private smbd (root: FUSE). `bench` runs them all.
bench:
	$(MAKE) --no-print-directory bench-clone
	$(MAKE) --no-print-directory bench-clone-cache
	$(MAKE) --no-print-directory bench-fsync
	$(MAKE) --no-print-directory bench-vms
	$(MAKE) --no-print-directory bench-snapshot
	$(MAKE) --no-print-directory bench-bridge

bench-clone: build test-deps
	$(PYTHON) bench/clone.py --build $(BUILD)

# Snapshot of a stopped VM's 1 GiB dense disk on xfs/btrfs/ext4 loop shares.
bench-snapshot: build test-deps
	$(PYTHON) bench/snapshot.py --build $(BUILD)

# VM disk from a 1 GiB dense image: today's client copy against the base
# cache (first create fills it, second clones on the server), on shares
# backed by loop-mounted ext4, xfs and btrfs.
bench-clone-cache: build test-deps
	$(PYTHON) bench/clone_cache.py --build $(BUILD)

# fio randwrite with an fsync every N writes: durable mount, nostrictsync
# mount (fsync not sent) and the server's own disk (docs/smb-durability.md).
bench-fsync: build test-deps
	$(PYTHON) bench/fsync.py --build $(BUILD)

# fio through nqrust-smbfs (conns=1 and conns=4) against libsmbclient
# called directly (bench/smbc_direct.c), docs/smb-durability.md.
bench-bridge: build test-deps
	$(PYTHON) bench/bridge.py --build $(BUILD)

# GET /v1/vms?limit=100 against GET /v1/storage/backends, 1000 VMs over 3
# hosts on PostgreSQL, with and without a SIGSTOPped host.
bench-vms: build test-deps
	$(PYTHON) bench/vms_list.py --build $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
