#!/bin/bash
# inline.sh ROUNDS OUT: prefork on Redis, the prefork plugin of 8f03520 (lone records written on the supervisor thread; git archive 8f03520 plugins/prefork/src | tar -x -C /tmp/v-inline) against the working tree's (every record through the writer thread); run from the repository root
ROUNDS=$1; OUT=$2
for i in $(seq $ROUNDS); do
  for v in inline thread; do
    case $v in inline) PP=/tmp/v-inline/plugins/prefork/src;; thread) PP=;; esac
    line=$(PYTHONPATH=$PP timeout 300 .venv/bin/python benchmarks/run.py --broker redis --pool prefork --peers none --repeats 1 2>&1 | grep -E '^\[1/1\]' | tail -1)
    echo "$v $(uptime | sed 's/.*load/load/') :: $line" | tee -a $OUT
  done
done
