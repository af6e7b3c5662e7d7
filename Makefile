# stemgraph: the two commands of the quick start, and a few helpers.
#   make demo   writes the built-in demo song and renders the demo recipe on it
#   make test   runs the whole test suite (the sound-server playback test last, alone), then
#               builds and tests the headless library (cargo --no-default-features): its unit
#               and doc tests and the tests of what the features change
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

# The integration tests are a few test binaries (tests/suite.rs says which files each gathers).
# The playback test through a PulseAudio null sink plays in real time: it runs alone, after the
# others (it is #[ignore]d in the plain run), and whatever they did. Then the headless build
# (`--no-default-features`: no live playback, plots, demo or lossy encoders) is built and tested:
# its library and binary (unit tests and doc tests) and the tests of what the features change
# (the `headless` binary: the command line, the render, check, analyze and report paths that
# plots, lossy encoders and the demo gate; `decode` and `metadata`). (The DSP, engine and
# real-material tests do not depend on the features: they ran in the full suite.) Its dependency
# tree is checked for ALSA and lilv (it must build without their headers), for clack (no plugin
# hosting without the `plugins` feature) and for libopus and LAME (no lossy encoders without the
# `lossy` feature). Each phase says how long it took.
HEADLESS_TESTS = --test headless --test decode --test metadata

test: test-deps
	@status=0; t=$$(date +%s); \
	phase() { echo "make test: $$1 took $$(( $$(date +%s) - t )) s"; t=$$(date +%s); }; \
	$(CARGO) test --all-targets --no-fail-fast || status=1; phase "the suite"; \
	$(CARGO) test --test live live_pulse -- --ignored --test-threads=1 || status=1; phase "live_pulse"; \
	$(CARGO) test --no-default-features --no-fail-fast --lib --bins $(HEADLESS_TESTS) || status=1; \
	$(CARGO) test --no-default-features --doc || status=1; \
	phase "the headless build and tests"; \
	if $(CARGO) tree --no-default-features --edges normal,build --prefix none | grep -i alsa; then \
		echo "error: the --no-default-features build depends on ALSA" >&2; status=1; \
	fi; \
	if $(CARGO) tree --no-default-features --edges normal,build --prefix none | grep -i lilv; then \
		echo "error: the --no-default-features build depends on lilv" >&2; status=1; \
	fi; \
	if $(CARGO) tree -p stemgraph --no-default-features --edges normal,build --prefix none | grep -i -E "opus|mp3lame"; then \
		echo "error: the --no-default-features build depends on libopus or LAME" >&2; status=1; \
	fi; \
	if $(CARGO) tree -p stemgraph --no-default-features --edges normal,build --prefix none | grep -i clack; then \
		echo "error: the --no-default-features build depends on clack (CLAP hosting)" >&2; status=1; \
	fi; \
	exit $$status

bench: deps
	$(CARGO) bench

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf demo
