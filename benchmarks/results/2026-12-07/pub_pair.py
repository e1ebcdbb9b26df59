"""Publishing loops of two trees taking turns (PYTHONPATH of each side): medians of calls/s
until the loop returned and until all were confirmed. Run: python pub_pair.py TURNS N A B."""
import os, sys, json, statistics, subprocess
turns, n = int(sys.argv[1]), int(sys.argv[2])
paths = {"A": sys.argv[3], "B": sys.argv[4]}
sides = {}
for name, path in paths.items():
    env = dict(os.environ, PYTHONPATH=path) if path else {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "pub_side.py")], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    sides[name] = p
rates = {name: [] for name in sides}
for turn in range(turns):
    for name in (list(sides) if turn % 2 == 0 else list(reversed(list(sides)))):
        p = sides[name]
        p.stdin.write(f"go {n}\n"); p.stdin.flush()
        rates[name].append(json.loads(p.stdout.readline()))
for p in sides.values():
    p.stdin.close(); p.wait(60)
for name in sides:
    where = "the installed tree" if not paths[name] else paths[name].split(":")[0].rsplit("/kernel", 1)[0]
    print(f"{name} ({where}): loop {statistics.median(r[0] for r in rates[name]):,.0f}/s, confirmed {statistics.median(r[1] for r in rates[name]):,.0f}/s (medians of {turns} turns of {n})")
