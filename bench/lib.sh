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
