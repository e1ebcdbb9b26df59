"""Print the table of a fault-injection run (``make chaos``): scenario x transport.

Reads the JSON lines tests/reliability/chaos.py appended to the report file given as the
only argument, and prints a Markdown table docs/guarantees.md can quote as it is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(lines: list[str]) -> str:
    rows = [json.loads(line) for line in lines if line.strip()]
    out = [
        "| scenario | transport | sent | ran once | lost | duplicated | recovery s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        recovery = "" if row["recovery_s"] is None else f"{row['recovery_s']:.2f}"
        out.append(
            f"| {row['scenario']} | {row['transport']} | {row['sent']} | {row['ran_once']} | "
            f"{row['lost']} | {row['duplicated']} | {recovery} |"
        )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("error: usage: chaos_table.py REPORT.jsonl", file=sys.stderr)
        return 2
    path = Path(argv[0])
    if not path.exists():
        print(f"error: no report at {path} (did the chaos run start?)", file=sys.stderr)
        return 2
    print(table(path.read_text().splitlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
