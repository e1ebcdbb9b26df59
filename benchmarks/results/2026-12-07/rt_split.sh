#!/bin/bash
# One window: RabbitMQ's own cost per message (rabbit_cost.py), then celeriac (rpc://) and
# Dramatiq (Redis results) round trips alternated, CPU per round trip by process.
# Run from the repository root: bash benchmarks/results/2026-12-07/rt_split.sh 1500
D=$(dirname "$0"); N=${1:-1500}
date -u
.venv/bin/python "$D/rabbit_cost.py" "$N"
for r in 1 2; do
  .venv/bin/python "$D/rt_cpu.py" "$N" 2>&1 | grep -E "^all|  threads"
  .venv/bin/python "$D/rt_cpu_dramatiq.py" "$N" 2>&1 | grep -E "^Dramatiq"
done
date -u
