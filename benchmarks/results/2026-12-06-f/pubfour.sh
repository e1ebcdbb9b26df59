#!/bin/bash
# The trees: git archive 7ea2355 benchmarks | tar -x -C /tmp/oldbench; git archive 7ea2355 kernel/src | tar -x -C /tmp/oldkernel; run from the repository root.
# pubfour.sh ROUNDS OUT: RabbitMQ, run.py --broker amqp --peers none --repeats 1; bench scripts old (7ea2355: every plugin) or new (6bfd8a1: the deployment's plugins); kernel old (uuid4 per id) or new (buffered ids)
ROUNDS=$1; OUT=$2
cd /work/main
for i in $(seq $ROUNDS); do
  for v in old-old old-ids plugins-old plugins-ids; do
    case $v in
      old-old) B=/tmp/oldbench/benchmarks; PP=/tmp/oldkernel/kernel/src;;
      old-ids) B=/tmp/oldbench/benchmarks; PP=;;
      plugins-old) B=benchmarks; PP=/tmp/oldkernel/kernel/src;;
      plugins-ids) B=benchmarks; PP=;;
    esac
    line=$(PYTHONPATH=$PP timeout 300 .venv/bin/python $B/run.py --broker amqp --peers none --repeats 1 2>&1 | grep -E '^\[1/1\]' | tail -1)
    echo "$v $(uptime | sed 's/.*load/load/') :: $line" | tee -a $OUT
  done
done
