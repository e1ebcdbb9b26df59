#!/bin/bash
cd /work/main
VARPP=$(ls -d /tmp/var/kernel/src /tmp/var/plugins/*/src | tr '\n' ':')
for i in $(seq 1 ${ROUNDS:-3}); do
  echo "== var $i"; PYTHONPATH=$VARPP timeout 300 .venv/bin/python benchmarks/run.py --broker amqp --peers none --repeats 1 "$@" 2>&1 | grep -A1 "^\[1/1\]" | tr -d "\n"; echo
  echo "== new $i"; timeout 300 .venv/bin/python benchmarks/run.py --broker amqp --peers none --repeats 1 "$@" 2>&1 | grep -A1 "^\[1/1\]" | tr -d "\n"; echo
done
