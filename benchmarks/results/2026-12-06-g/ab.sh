#!/bin/bash
# A/B: base tree (/tmp/base) vs working tree, interleaved, celeriac only on amqp.
cd /work/main
BASEPP=$(ls -d /tmp/base/kernel/src /tmp/base/plugins/*/src | tr '\n' ':')
for i in $(seq 1 ${ROUNDS:-3}); do
  echo "== base $i"; PYTHONPATH=$BASEPP timeout 300 .venv/bin/python benchmarks/run.py --broker amqp --peers none --repeats 1 "$@" 2>&1 | grep -A1 "^\[1/1\]" | tr -d "\n"; echo
  echo "== new $i"; timeout 300 .venv/bin/python benchmarks/run.py --broker amqp --peers none --repeats 1 "$@" 2>&1 | grep -A1 "^\[1/1\]" | tr -d "\n"; echo
done
