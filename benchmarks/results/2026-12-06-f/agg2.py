import sys, collections, re
# key: process path (pid chain) + thread root; filter idle leaves
IDLE = ("settle.py:141", "select (selectors", "Condition.wait", "_recv (multiprocessing", "read_from_socket", "_socket_can_read", "wait (threading", "recv_bytes", "poll (")
tot = collections.Counter(); busy=collections.Counter(); leaf = collections.defaultdict(collections.Counter); incl = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    n = int(n); frames = stack.split(";")
    procs = [f for f in frames if f.startswith("process ")]
    pk = " > ".join(re.match(r"process (\d+)", p).group(1) for p in procs)
    rest = [f for f in frames if not f.startswith("process ")]
    thread = rest[0][:40] if rest else "?"
    key = pk
    tot[key] += n
    if any(s in rest[-1] for s in IDLE): continue
    busy[key]+=n
    leaf[key][rest[-1][:110]] += n
    seen=set()
    for f in rest:
        k=f[:110]
        if k not in seen: incl[key][k]+=n; seen.add(k)
for p, t in tot.most_common():
    print("==", p, "samples", t, "busy", busy[p], f"{busy[p]/t*100:.0f}%")
    for k, v in leaf[p].most_common(int(sys.argv[2])):
        print(f"  leaf {v/busy[p]*100:5.1f}% {k}")
    for k, v in incl[p].most_common(int(sys.argv[3])):
        print(f"  incl {v/busy[p]*100:5.1f}% {k}")
