#!/bin/bash
# Alternate rounds of rt_cpu.py: the working tree ("new") and another tree by PYTHONPATH
# ("old": BASE=/tmp/base, made by `git archive <rev> kernel plugins | tar -x -C /tmp/base`).
# Run from the repository root: N=1500 bash benchmarks/results/2026-12-07/ab.sh
D=$(dirname "$0"); BASE=${BASE:-/tmp/base}
OLD=$(ls -d "$BASE"/kernel/src "$BASE"/plugins/*/src | tr '\n' ':')
for r in 1 2 3; do
  echo "== new $r"; timeout 300 .venv/bin/python "$D/rt_cpu.py" "${N:-2000}" 2>&1 | grep -E "^all|threads"
  echo "== old $r"; PYTHONPATH=$OLD timeout 300 .venv/bin/python "$D/rt_cpu.py" "${N:-2000}" 2>&1 | grep -E "^all|threads"
done
