import collections, sys
IDLE=("wait (threading","select (selectors","poll (","acquire (","_wait_for_tstate_lock","sleep","epoll","wait (")
byth=collections.Counter(); leaf=collections.defaultdict(collections.Counter); incl=collections.defaultdict(collections.Counter)
tot=0
for line in open(sys.argv[1]):
    stack,_,n=line.rstrip().rpartition(' '); n=int(n)
    fr=[f for f in stack.split(';') if not f.startswith('process ')]
    if not fr: continue
    th = fr[0] if fr[0].startswith('thread') else '?'
    fr=[f for f in fr if not f.startswith('thread')]
    if 'importlib' in stack or not fr: continue
    idle = any(s in fr[-1] for s in IDLE)
    # thread kind by frames
    s=stack
    kind = 'pool' if 'ThreadPool' in s or '_worker (concurrent' in s or 'pool' in s.lower() and 'run_task' in s else ('link-io' if '_link.py' in s else ('consumer' if 'Consumer.run' in s else ('settler' if 'Settler' in s else 'other')))
    key=(kind, 'idle' if idle else 'busy')
    byth[key]+=n
    if idle: continue
    tot+=n
    leaf[kind][fr[-1][:110]]+=n
    seen=set()
    for f in fr:
        f=f[:110]
        if f not in seen: incl[kind][f]+=n; seen.add(f)
for k,v in sorted(byth.items()): print(k, v)
for kind in sorted(incl, key=lambda k:-sum(leaf[k].values())):
    c=sum(leaf[kind].values())
    print(f"== {kind} {c} busy samples ({c/tot*100:.0f}% of busy)")
    for k,v in leaf[kind].most_common(12): print(f"   leaf {v/c*100:5.1f}% {k}")
    for k,v in incl[kind].most_common(40)[:40]: print(f"   incl {v/c*100:5.1f}% {k}")
