#!/usr/bin/env bash
# Run the test suite RUNS times in a row (default 30) and report every test that failed even once.
# A test that fails now and then makes every submission's CI a coin toss: run this after adding
# a test that touches time, threads, processes or sockets.   Usage: make soak [RUNS=30]
set -u
runs=${1:-30}
python=${PYTHON:-.venv/bin/python}
log=$(mktemp -d)
failed=0
for ((n = 1; n <= runs; n++)); do
  if "$python" -m pytest -q -p no:cacheprovider >"$log/run-$n.txt" 2>&1; then
    echo "run $n/$runs: passed ($(tail -n 1 "$log/run-$n.txt" | tr -d '='))"
  else
    failed=$((failed + 1))
    echo "run $n/$runs: FAILED"
    grep -E '^(FAILED|ERROR) ' "$log/run-$n.txt" | sed 's/^/    /'
  fi
done
echo
if ((failed)); then
  echo "$failed of $runs runs failed; logs in $log. Tests that failed, with how often:"
  cat "$log"/run-*.txt | grep -E '^(FAILED|ERROR) ' | cut -d' ' -f2 | sort | uniq -c | sort -rn
  exit 1
fi
echo "all $runs runs passed"
rm -rf "$log"
