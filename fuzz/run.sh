#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 30), one at a
# time, with the SMTP dictionary and the seed corpus. Exits non-zero if any
# target crashes (the reproducer lands in fuzz/artifacts/<target>/).
#
#   fuzz/run.sh [SECONDS]
#
# Environment: FUZZ_TARGETS (space-separated subset), FUZZ_SANITIZER (default
# "none": the core forbids unsafe code, so the harnesses' own assertions and
# counting allocator are the checks; "address" adds ASan at half the speed).
#
# New inputs go to fuzz/corpus/<target>/ (ignored by git); the committed
# seeds in fuzz/seeds/<target>/ are read alongside, never written.
set -euo pipefail

SECONDS_PER_TARGET="${1:-30}"
cd "$(dirname "$0")"
# cargo fuzz needs nightly flags (-Z sanitizer, -C passes); the stable
# toolchain accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
TARGETS=(${FUZZ_TARGETS:-reply ehlo client_session dot_stuff commands auth})
FLAGS=(--release --debug-assertions --sanitizer "${FUZZ_SANITIZER:-none}")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

T0=$(date +%s)
echo "== building ${#TARGETS[@]} targets"
cargo fuzz build "${FLAGS[@]}"
echo "== built in $(( $(date +%s) - T0 ))s"

failed=()
summary=()
for target in "${TARGETS[@]}"; do
    mkdir -p "corpus/$target"
    log="$(mktemp)"
    echo "== $target: ${SECONDS_PER_TARGET}s"
    status=0
    cargo fuzz run "${FLAGS[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -dict=smtp.dict \
        -max_total_time="$SECONDS_PER_TARGET" \
        -max_len=8192 \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        # The crash report: the panic message and the reproducer's path.
        grep -E "panicked|ERROR|SUMMARY|Test unit written|artifact_prefix|Failed to" "$log" | head -n 20 || true
        tail -n 40 "$log"
    fi
    summary+=("$(printf '%-15s %12s execs  %s' "$target" "${execs:-?}" \
        "$([ "$status" -eq 0 ] && echo ok || echo "CRASH (exit $status)")")")
    rm -f "$log"
done

echo "== summary (${SECONDS_PER_TARGET}s per target, $(( $(date +%s) - T0 ))s in all)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "crashed: ${failed[*]} (reproducers in fuzz/artifacts/)"
    exit 1
fi
