#!/bin/bash
# The trees: git archive 2987abf kernel plugins | tar -x -C /tmp/base; the prefork sources of 2987abf (/tmp/v-reserve) and of 7ea2355 (/tmp/v-carry) with only the reserve line swapped; run from the repository root.
# four.sh ROUNDS OUT: base (2987abf) / reserve only / carry only / both (HEAD), prefork on Redis
ROUNDS=$1; OUT=$2
BASEPP=$(ls -d /tmp/base/kernel/src /tmp/base/plugins/*/src | tr '\n' ':')
cd /work/main
for i in $(seq $ROUNDS); do
  for v in base reserve carry both; do
    case $v in
      base) PP=$BASEPP;;
      reserve) PP=/tmp/v-reserve/plugins/prefork/src;;
      carry) PP=/tmp/v-carry/plugins/prefork/src;;
      both) PP=;;
    esac
    line=$(PYTHONPATH=$PP timeout 300 .venv/bin/python benchmarks/run.py --broker redis --pool prefork --peers none --repeats 1 2>&1 | grep -E '^\[1/1\]' | tail -1)
    echo "$v $(uptime | sed 's/.*load/load/') :: $line" | tee -a $OUT
  done
done
