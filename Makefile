# kodad: `make serve` runs the service, `make test` installs everything and runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := node_modules/.bin/buf
GEN := service/kodad/gen docs/reference.md

.PHONY: install serve test lint generate check-generated breaking pytest go-test ts-test java-test rust-test bench clean

GO_PLUGINS := tools/bin/protoc-gen-go tools/bin/protoc-gen-go-grpc
JAVA_GENERATORS := tools/bin/protoc tools/bin/protoc-gen-grpc-java
MVN := mvn -B -q --no-transfer-progress
MAVEN_COPY := $(MVN) org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy -DoutputDirectory=tools/bin -Dmdep.stripVersion=true -Dmdep.stripClassifier=true

RUST_PLUGINS := tools/bin/protoc-gen-prost tools/bin/protoc-gen-tonic

install: $(VENV)/.installed node_modules/.installed $(GO_PLUGINS) $(JAVA_GENERATORS) $(RUST_PLUGINS)

# Code generators for Go, pinned, from the Go module proxy.
tools/bin/protoc-gen-go:
	GOBIN=$(CURDIR)/tools/bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12

tools/bin/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/tools/bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

# Code generators for Java, pinned, from Maven Central: protoc (its built-in java generator)
# and grpc-java's plugin.
tools/bin/protoc:
	$(MAVEN_COPY) -Dartifact=com.google.protobuf:protoc:4.36.2:exe:linux-x86_64
	mv tools/bin/protoc.exe $@ && chmod +x $@

tools/bin/protoc-gen-grpc-java:
	$(MAVEN_COPY) -Dartifact=io.grpc:protoc-gen-grpc-java:1.83.1:exe:linux-x86_64
	mv tools/bin/protoc-gen-grpc-java.exe $@ && chmod +x $@

# Code generators for Rust, pinned, from crates.io (prost messages, tonic client).
$(RUST_PLUGINS) &:
	cargo install --quiet --locked --root tools protoc-gen-prost@0.5.0 protoc-gen-tonic@0.5.0

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet ./clients/python -e '.[dev]'
	touch $(VENV)/.runtime $@

# What `make serve` needs: Python and the service's own packages, no other toolchain.
$(VENV)/.runtime: pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet ./clients/python -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

serve: $(VENV)/.runtime
	$(VENV)/bin/kodad serve

generate: install
	tools/generate.sh

# Fails when the committed generated code differs from what the proto generates.
check-generated: generate
	@if [ -n "$$(git status --porcelain -- $(GEN) clients)" ]; then \
	  git status --porcelain -- $(GEN) clients; \
	  echo "generated code is stale: run 'make generate' and commit"; exit 1; fi

lint: install
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check
	$(VENV)/bin/mypy
	$(BUF) lint
	$(BUF) format --diff --exit-code
	@test -z "$$(gofmt -l clients/go)" || { gofmt -l clients/go; echo "gofmt: files above need formatting"; exit 1; }
	cd clients/go && go vet ./...
	cd clients/rust && cargo fmt --check && cargo clippy --locked --tests --examples -- -D warnings

# Compares the contract with main's (BREAKING_AGAINST overrides the git ref).
BREAKING_AGAINST ?= .git\#branch=main
breaking: install
	$(BUF) breaking --against '$(BREAKING_AGAINST),subdir=proto'

# Benchmarks: prints the table and writes bench/RESULTS.md and bench/latency.png.
bench: install
	$(PY) -m pip install --quiet ./clients/python -e '.[dev,bench]'
	$(PY) -m bench.run
	$(PY) -m bench.sidecar
	$(PY) -m bench.sandbox
	$(PY) -m bench.flood
	$(PY) -m bench.checkpoints
	tools/postgres.sh
	$(PY) -m bench.replicas

# The store and replica tests start their own PostgreSQL (Debian's packages, installed here);
# the sandbox tests need bubblewrap (Debian's package) and fail without it.
pytest: install tests/acp_ts/node_modules/.installed clients/typescript/node_modules/.installed
	tools/postgres.sh
	tools/bubblewrap.sh
	KODAD_REQUIRE_SANDBOX=1 $(PY) -m pytest -q
	$(PY) -m bench.sandbox --quick
	$(PY) -m bench.flood --quick
	$(PY) -m bench.checkpoints --quick
	$(PY) -m bench.run --quick

# The TypeScript ACP SDK, for the test where an editor written with it drives `kodad acp`.
tests/acp_ts/node_modules/.installed: tests/acp_ts/package.json tests/acp_ts/package-lock.json
	cd tests/acp_ts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The Go client: unit of the wrapper, README example and the shared conformance scenarios.
go-test: install
	cd clients/go && go test -count=1 ./...

# The TypeScript client: type-checked build, wrapper tests, README example, shared scenarios.
ts-test: install clients/typescript/node_modules/.installed
	cd clients/typescript && npm test

clients/typescript/node_modules/.installed: clients/typescript/package.json clients/typescript/package-lock.json
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The Java client: wrapper tests, README example, shared scenarios (Maven fetches its deps).
java-test: install
	cd clients/java && $(MVN) test

# The Rust client: wrapper tests, README example, shared scenarios (cargo fetches its crates).
rust-test: install
	cd clients/rust && cargo test --locked

test: install lint check-generated pytest go-test ts-test java-test rust-test

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache clients/typescript/node_modules clients/typescript/dist tests/acp_ts/node_modules clients/java/target clients/rust/target
