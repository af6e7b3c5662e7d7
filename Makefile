# stemgraph: the two commands of the quick start, and a few helpers.
#   make demo   writes the built-in demo song and renders the demo recipe on it
#   make test   runs the whole test suite
# Both first install the system packages they need when missing (see .ci/install-deps).

CARGO ?= cargo

.PHONY: demo test deps test-deps build bench fmt clean

deps:
	@.ci/install-deps build

test-deps:
	@.ci/install-deps test

build: deps
	$(CARGO) build --release

demo: build
	$(CARGO) run --release --quiet -- demo --out demo

test: test-deps
	$(CARGO) test --all-targets --no-fail-fast

bench: deps
	$(CARGO) bench

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf demo
