# mmapkit: the two commands that matter are `make run` and `make test`.
# Both set up what is missing first (tools/setup.sh is silent when nothing is).

MMAPKIT := node bin/mmapkit.js

.PHONY: all setup build run test unit lint clean

all: build

setup:
	@tools/setup.sh

build: setup
	@$(MMAPKIT) build

# Build, boot, load the reference driver, run the conformance suite's core cases on
# its profiles, print a summary: the edit-build-run loop. FULL=1 runs every case.
run: setup
	@$(MMAPKIT) test $(if $(FULL),,--quick)

# Every test, on every installed kernel series (6.1 and 6.12): host unit tests, the VM-backed
# conformance suite and CLI checks, and the lint.
test: setup
	@$(MMAPKIT) build --kernels all
	@$(MMAPKIT) lint --kernels all
	@node_modules/.bin/vitest run

unit: setup
	@node_modules/.bin/vitest run --project unit

lint: setup
	@$(MMAPKIT) lint

clean:
	rm -rf build native/build
