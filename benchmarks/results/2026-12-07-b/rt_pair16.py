"""Round trips of two trees taking turns (PYTHONPATH of each side), so that the machine's
drift falls on both alike: per turn, each side does N sequential round trips; medians of
all and of each side per turn. Run: python rt_pair.py TURNS N PYTHONPATH_A PYTHONPATH_B."""
import os, sys, json, statistics, subprocess
turns, n = int(sys.argv[1]), int(sys.argv[2])
paths = {"A": sys.argv[3], "B": sys.argv[4]}
sides = {}
for name, path in paths.items():
    env = dict(os.environ, PYTHONPATH=path) if path else {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "rt_side16.py")], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    sides[name] = p
times = {name: [] for name in sides}
wins = {name: 0 for name in sides}
for turn in range(turns):
    order = list(sides) if turn % 2 == 0 else list(reversed(list(sides)))
    medians = {}
    for name in order:
        p = sides[name]
        p.stdin.write(f"go {n}\n"); p.stdin.flush()
        ts = json.loads(p.stdout.readline())
        times[name] += ts
        medians[name] = statistics.median(ts)
    wins[min(medians, key=medians.get)] += 1
for p in sides.values():
    p.stdin.close(); p.wait(60)
for name in sides:
    where = "the installed tree" if not paths[name] else paths[name].split(":")[0].rsplit("/kernel", 1)[0]
    print(f"{name} ({where}): p50 {statistics.median(times[name]):.0f} us over {len(times[name])} round trips; faster in {wins[name]} of {turns} turns")
