#!/usr/bin/env bash
# Builds every offered feature combination of both adapters (cargo clippy,
# warnings as errors, the library only: tests and examples run with the
# defaults elsewhere). Shares the workspace target dir, so after the main
# build only what a combination changes is compiled.
#
# aws-lc-rs compiles C code (aws-lc-sys): it needs a C compiler (gcc) and,
# on this platform, no cmake; if cmake turns out missing elsewhere, run
# `apt-get install -y cmake` first.
#
# Time on the 2-core machine, cold, right after `cargo clippy --workspace
# --all-targets`: 3.3 to 4.7 minutes (aws-lc-sys's C build and the TLS-off
# unit tests' debug builds are most of it; after `cargo test --workspace`
# the latter are mostly built already); warm, about 20 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

combos=(
    ""                                                   # default: ring, webpki-roots, tracing, scram
    "--no-default-features"                              # TLS off: plaintext and your own stream
    "--no-default-features --features tracing"           # TLS off, tracing on
    "--no-default-features --features ring"              # ring, no root store (own PEM roots)
    "--no-default-features --features ring,native-roots" # the OS trust store
    "--no-default-features --features aws-lc-rs,webpki-roots"
    "--no-default-features --features aws-lc-rs,native-roots,tracing,scram-sha1"
    "--no-default-features --features tls"               # rustls with a process-default provider
    "--features native-roots,scram-sha1"                 # both root stores
)

for crate in smtp-blocking smtp-tokio; do
    for combo in "${combos[@]}"; do
        echo "--- [${SECONDS}s] $crate ${combo:-(default features)}"
        # shellcheck disable=SC2086
        cargo clippy -q -p "$crate" --lib $combo -- -D warnings
    done
done
# The TLS-off build's own tests: asking for TLS is a typed error.
for crate in smtp-blocking smtp-tokio; do
    echo "--- [${SECONDS}s] $crate --no-default-features: unit tests"
    cargo test -q -p "$crate" --no-default-features --lib
done
echo "all feature combinations build (${SECONDS}s)"
