"""Summarise a `py-spy record -f raw` file: per thread, the frames most samples ended in;
with a second argument, only the stacks through that frame (a loop's line), per frame name.
Run: python profile_summary.py RAW [FRAME_SUBSTRING]"""
import collections, sys
per = collections.defaultdict(collections.Counter); totals = collections.Counter()
for line in open(sys.argv[1]):
    line = line.rstrip()
    if not line:
        continue
    stack, _, count = line.rpartition(" ")
    frames = stack.split(";")
    if len(sys.argv) > 2 and not any(sys.argv[2] in f for f in frames):
        continue
    thread = "main" if "MainThread" in frames[0] else frames[0].split(":")[-1].strip() or frames[0]
    totals[thread] += int(count)
    per[thread][frames[-1].split(" (")[0] if len(sys.argv) > 2 else frames[-1]] += int(count)
for thread, total in totals.most_common(8):
    print(f"== {thread}: {total} samples")
    for frame, count in per[thread].most_common(8):
        print(f"   {count:6d} {100 * count / total:5.1f}%  {frame[:110]}")
