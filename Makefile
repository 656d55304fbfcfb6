# Strata -- the two commands a user needs are `make run` and `make test`.
MAKEFLAGS += --no-print-directory
# CMake does the building; this file wires deps, configurations and tests.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD := build
ASAN := build/asan
CMAKE_FLAGS ?=
ifeq ($(CI),true)
  CMAKE_FLAGS += -DSTRATA_WERROR=ON
endif

.PHONY: all deps build asan release bench compare test run clean format help

all: build

help:
	@echo "make run    - install deps, build, start a single-node broker on 127.0.0.1:9092 (data in ./data)"
	@echo "make test   - install deps, build, run every test (unit suites under ASan+UBSan)"
	@echo "make build  - build everything into build/ (build/bin, build/lib, build/plugins)"
	@echo "make bench  - build and run the storage benchmark (Release)"
	@echo "make compare - stratad vs NATS JetStream, libstrata vs librdkafka (Release; COMPARE_ARGS=--runs 5)"

deps:
	@bash scripts/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan:
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

test: deps build asan
	@bash scripts/test.sh

# A single-node broker with the embedded defaults: Kafka listener
# 127.0.0.1:9092, data in ./data (config/server.properties documents every key).
run: deps build
	@exec ./$(BUILD)/bin/stratad -c config/server.properties $(STRATAD_ARGS)

release:
	@cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSTRATA_TESTS=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build build/release -j $(JOBS)

bench: deps release
	@./build/release/bin/strata-bench storage $(BENCH_ARGS)

# The peer comparison (docs/benchmarking.md): starts and stops its own servers.
compare: deps release
	@./build/release/bin/strata-bench compare $(COMPARE_ARGS)

clean:
	rm -rf $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')
