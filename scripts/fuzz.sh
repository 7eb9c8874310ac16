#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -Dfuzzing=true) in build-fuzz/ (or in
# $FUZZ_BUILD_DIR) and runs each one for SECONDS (default 60), all in parallel. Each
# target runs on its own working corpus in build-fuzz/corpus/<target>/, seeded from
# tests/fuzz/corpus/<target>/ (the seed corpus in the repository is never written
# to). Crash inputs go to build-fuzz/artifacts/<target>/, logs to
# build-fuzz/logs/<target>.log.
# Prints executions and crashes per target; exits 1 if any target crashed.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS]" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"  # FUZZ_BUILD_DIR: another build folder
targets=(fuzz_command fuzz_sasl fuzz_data_codec fuzz_backend_reply fuzz_proxy_header fuzz_header_from
         fuzz_config)

# Reuses build-fuzz when it was set up with clang; otherwise sets it up afresh, keeping
# the working corpora gathered by earlier runs.
configure() {
    if [[ -f "$build/build.ninja" ]] && grep -q 'clang++' "$build/build.ninja"; then
        meson configure "$build" -Dfuzzing=true >/dev/null
        return
    fi
    if [[ -d "$build" ]]; then
        find "$build" -mindepth 1 -maxdepth 1 ! -name corpus -exec rm -rf {} +
    fi
    CC=clang CXX=clang++ meson setup "$build" "$root" -Dfuzzing=true >/dev/null
}

build_targets() {
    local paths=()
    for t in "${targets[@]}"; do
        paths+=("tests/fuzz/$t")
    done
    ninja -C "$build" -j"${FUZZ_JOBS:-2}" "${paths[@]}"
}

# Runs one target in the background; its log and artifacts go under build-fuzz/.
start_target() {
    local t="$1"
    mkdir -p "$build/corpus/$t" "$build/artifacts/$t" "$build/logs"
    cp -n "$root/tests/fuzz/corpus/$t"/* "$build/corpus/$t"/ 2>/dev/null || true
    "$build/tests/fuzz/$t" "$build/corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$t/" >"$build/logs/$t.log" 2>&1 &
    pids[$t]=$!
}

report_target() {
    local t="$1" status=0
    wait "${pids[$t]}" || status=$?
    local log="$build/logs/$t.log"
    local execs
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    local crashes
    crashes="$(find "$build/artifacts/$t" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
        -newer "$log.start" | wc -l)"
    if [[ "$status" -ne 0 && "$crashes" -eq 0 ]]; then
        crashes=1  # died without an artifact (e.g. sanitizer abort in startup)
    fi
    printf '%-20s executions: %-10s crashes: %s\n' "$t" "${execs:-?}" "$crashes"
    if [[ "$crashes" -ne 0 ]]; then
        echo "  see $log and $build/artifacts/$t/" >&2
        failed=1
    fi
}

configure
build_targets

declare -A pids
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$build/logs"
    touch "$build/logs/$t.log.start"
    start_target "$t"
done
for t in "${targets[@]}"; do
    report_target "$t"
done
exit "$failed"
