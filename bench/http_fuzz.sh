#!/usr/bin/env bash
# bench/http_fuzz.sh: the differential fuzz test of the proxy's HTTP/1
# request framing against Beast's parser (src/http/tests/http1_differential.h),
# run long: JOBS processes of ITERATIONS cases each, on seeds that do not
# overlap (job j starts at SEED + j * ITERATIONS). The unit test suite runs
# 30,000 cases; this runs millions.
#
#   bench/http_fuzz.sh BUILD_DIR [ITERATIONS] [SEED]
#
# Defaults: ITERATIONS 5000000 (some 20 s per job), SEED 1,
# JOBS 2. Exits non-zero on any failure; each failure names its case seed,
# and HTTP1_FUZZ_SEED=<case seed> HTTP1_FUZZ_ITERATIONS=1
# BUILD_DIR/src/http/http1_fuzz_test replays that case alone.
set -euo pipefail
BUILD=${1:?usage: bench/http_fuzz.sh BUILD_DIR [ITERATIONS] [SEED]}
ITERATIONS=${2:-5000000}
SEED=${3:-1}
JOBS=${JOBS:-2}
BIN="$BUILD/src/http/http1_fuzz_test"
[[ -x "$BIN" ]] || { echo "no $BIN: ninja -C $BUILD http1_fuzz_test" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

PIDS=()
for ((j = 0; j < JOBS; j++)); do
  HTTP1_FUZZ_SEED=$((SEED + j * ITERATIONS)) HTTP1_FUZZ_ITERATIONS=$ITERATIONS \
    "$BIN" --gtest_filter='Http1DifferentialTest.Generated*' >"$WORK/job$j.log" 2>&1 &
  PIDS+=($!)
done
STATUS=0
for ((j = 0; j < JOBS; j++)); do
  wait "${PIDS[$j]}" || STATUS=1
  grep -v -e '^\[' -e '^Running main' -e '^Note: Google Test filter' "$WORK/job$j.log" || true
done
[[ $STATUS == 0 ]] && echo "http_fuzz: $((JOBS * ITERATIONS)) cases, no disagreement with Beast"
exit $STATUS
