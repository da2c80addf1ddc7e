#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 30), one at a
# time, with the SMTP dictionary and the seed corpus. Exits non-zero if any
# target crashes (the reproducer lands in fuzz/artifacts/<target>/).
#
#   fuzz/run.sh [SECONDS]
#
# Environment: FUZZ_TARGETS (space-separated subset), FUZZ_SANITIZER (default
# "none": the core forbids unsafe code, so the harnesses' own assertions and
# counting allocator are the checks; "address" adds ASan at half the speed),
# FUZZ_KEEP_GOING=1 (for long runs: after a crash, restart the target until
# its time is used up, and still fail at the end).
#
# New inputs go to fuzz/corpus/<target>/ (ignored by git); the committed
# seeds in fuzz/seeds/<target>/ are read alongside, never written.
set -euo pipefail

SECONDS_PER_TARGET="${1:-30}"
cd "$(dirname "$0")"
# cargo fuzz needs nightly flags (-Z sanitizer, -C passes); the stable
# toolchain accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
TARGETS=(${FUZZ_TARGETS:-reply ehlo client_session dot_stuff commands auth server_command server_session})
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
    echo "== $target: ${SECONDS_PER_TARGET}s"
    start=$(date +%s)
    total=0
    crashes=0
    while :; do
        left=$(( SECONDS_PER_TARGET - ($(date +%s) - start) ))
        [ "$left" -gt 0 ] || break
        log="$(mktemp)"
        status=0
        cargo fuzz run "${FLAGS[@]}" "$target" "corpus/$target" "seeds/$target" -- \
            -dict=smtp.dict \
            -max_total_time="$left" \
            -max_len=8192 \
            -timeout=10 \
            -rss_limit_mb=2048 \
            -print_final_stats=1 >"$log" 2>&1 || status=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        if [ -z "$execs" ]; then
            # A crash prints no final count: take the last progress line's.
            execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
        fi
        total=$(( total + ${execs:-0} ))
        # libFuzzer's final stats, as it printed them.
        grep -E "^stat::|^#[0-9]+ +DONE" "$log" | sed 's/^/    /' || true
        if [ "$status" -ne 0 ]; then
            crashes=$(( crashes + 1 ))
            # The crash report: the panic message and the reproducer's path.
            grep -E -A3 "panicked" "$log" | head -n 8 || true
            grep -E "SUMMARY|Test unit written|ERROR: libFuzzer" "$log" | head -n 5 || true
            if [ "${FUZZ_KEEP_GOING:-0}" != 1 ] || ! grep -q "Test unit written" "$log"; then
                tail -n 40 "$log"
                rm -f "$log"
                break
            fi
        fi
        rm -f "$log"
        [ "$status" -ne 0 ] || break
    done
    [ "$crashes" -eq 0 ] || failed+=("$target")
    summary+=("$(printf '%-15s %12s execs in %4ss  %s' "$target" "$total" \
        "$(( $(date +%s) - start ))" \
        "$([ "$crashes" -eq 0 ] && echo ok || echo "CRASHED $crashes time(s)")")")
done

echo "== summary (${SECONDS_PER_TARGET}s per target, $(( $(date +%s) - T0 ))s in all)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "crashed: ${failed[*]} (reproducers in fuzz/artifacts/)"
    exit 1
fi
