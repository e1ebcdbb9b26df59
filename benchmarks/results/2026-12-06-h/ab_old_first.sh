#!/bin/bash
# Kept as a record (amqp-before-after-direct.txt). Usage: ab_*.sh <a tree made by git archive REV kernel plugins> <rounds>
# alternate: old tree (PYTHONPATH) vs HEAD, run.py amqp celeriac only
OLD=$(ls -d $1/kernel/src $1/plugins/*/src | tr '\n' ':')
for i in $(seq 1 $2); do
  echo "== old round $i"; PYTHONPATH=$OLD /work/main/.venv/bin/python /work/main/benchmarks/run.py --broker amqp --peers none --repeats 1 2>&1 | grep -E "publish \(no|drain backlog|round trip, median"
  echo "== new round $i"; /work/main/.venv/bin/python /work/main/benchmarks/run.py --broker amqp --peers none --repeats 1 2>&1 | grep -E "publish \(no|drain backlog|round trip, median"
done
