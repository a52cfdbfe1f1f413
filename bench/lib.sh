# Shared by the bench/*.sh scripts (after test/integration/lib.sh).

# write_results NAME TITLE RESULTS_FILE DOCS
# Replaces the block between "<!-- bench/NAME results: begin" and
# "<!-- bench/NAME results: end -->" in DOCS with RESULTS_FILE's text (which
# holds both markers), or appends it under "## TITLE" the first time.
write_results() {
  python3 - "$1" "$2" "$3" "$4" <<'PY'
import re, sys
name, title, results_file, docs = sys.argv[1:5]
results = open(results_file).read().rstrip("\n")
text = open(docs).read()
pattern = re.compile(r"<!-- bench/%s results: begin.*?<!-- bench/%s results: end -->" % (re.escape(name), re.escape(name)), re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: results, text)
else:
    text = text.rstrip("\n") + "\n\n## " + title + "\n\n" + results + "\n"
open(docs, "w").write(text)
PY
}

# publish_results NAME TITLE: prints $RESULTS and, unless DOCS is "-",
# writes it into DOCS (write_results), through a file in $WORK.
publish_results() {
  echo "$RESULTS"
  [[ "$DOCS" == - ]] && return 0
  printf '%s\n' "$RESULTS" >"$WORK/results.md"
  write_results "$1" "$2" "$WORK/results.md" "$DOCS"
  echo "bench: results written to $DOCS" >&2
}

# build_commit PATH: the commit a binary (or any file) in a CMake build tree
# was built from, by its tree's source directory: "abc1234", with a remark
# if src/, apps/ or bench/ had uncommitted changes, or "of unknown commit".
build_commit() {
  local d src commit
  d=$(dirname "$(realpath "$1")")
  while [[ "$d" != / && ! -e "$d/CMakeCache.txt" ]]; do d=$(dirname "$d"); done
  src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$d/CMakeCache.txt" 2>/dev/null)
  commit=$(git -C "${src:-/nonexistent}" rev-parse --short HEAD 2>/dev/null) || { echo "of unknown commit"; return; }
  git -C "$src" diff --quiet HEAD -- src apps bench || commit="$commit (with uncommitted changes in src/, apps/ or bench/)"
  echo "$commit"
}

# wait_listening PORT WHAT LOGFILE: until something listens on PORT (15 s);
# otherwise the log's tail and fail naming WHAT.
wait_listening() {
  for _ in $(seq 150); do ss -Htln "sport = :$1" | grep -q . && return 0; sleep 0.1; done
  tail -20 "$3" >&2 || true
  fail "$2 does not listen on port $1"
}

# to_us DURATION: wrk's "1.23ms" (us, ms, s, m) in microseconds; -1 if unknown.
to_us() {
  awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    printf "%.0f", (u == "us" ? n : u == "ms" ? n * 1e3 : u == "s" ? n * 1e6 : u == "m" ? n * 6e7 : -1) }'
}

# The end of a bench's EXIT trap: the pool deleted through the server, if it
# still runs, then lib.sh's cleanup (the server, leftover containers, the
# bridge, WORK).
bench_teardown() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    dsp pool delete "$POOL" >/dev/null 2>&1
    for _ in $(seq 60); do dsp pool show "$POOL" >/dev/null 2>&1 || break; sleep 0.5; done
  fi
  cleanup
}
