# sdc — the two quick-start commands (`make demo`, `make test`) and helpers.
# Everything builds with CMake under build/ (release) and build-asan/ (ASan+UBSan).
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps build test test-asan test-avx2 demo fuzz bench clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Release tests, then the loaders, parsers and fuzz corpus again under ASan/UBSan.
test: build test-asan
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The release tests again on the AVX2 kernels (SDC_CPU=avx2): on an AVX-512 machine the default run
# takes the AVX-512 copies, so this is what checks the others.
test-avx2: build
	@cd $(BUILD) && SDC_CPU=avx2 ctest --output-on-failure -j$(JOBS)

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSDC_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j$(JOBS) -L sanitize

demo: build
	@./$(BUILD)/sdc generate -p "a red circle on a blue background" -s 42 -o demo.png
	@echo "demo: wrote $(CURDIR)/demo.png"

# libFuzzer harnesses (clang), each run for FUZZ_SECONDS over its corpus.
fuzz:
	@SDC_DEPS_EXTRA="clang libclang-rt-14-dev" bash scripts/deps.sh
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSDC_FUZZ=ON -DSDC_SANITIZE=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@mkdir -p fuzz/artifacts
	@for h in $(FUZZ_BUILD)/fuzz_*; do n=$$(basename $$h | sed 's/^fuzz_//'); \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s (new inputs go to fuzz/artifacts/corpus-$$n)"; \
		mkdir -p fuzz/artifacts/corpus-$$n; \
		$$h -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=fuzz/artifacts/ \
		    $$( [ -f fuzz/$$n.dict ] && echo -dict=fuzz/$$n.dict ) \
		    fuzz/artifacts/corpus-$$n fuzz/corpus/$$n || exit 1; done

bench: build
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
