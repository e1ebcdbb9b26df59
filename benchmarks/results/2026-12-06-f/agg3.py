import collections, sys
IDLE=("wait (threading","select (selectors","poll (","acquire")
thr=collections.Counter(); leaf=collections.defaultdict(collections.Counter); incl=collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    stack,_,n=line.rstrip().rpartition(' '); n=int(n); fr=stack.split(';')
    fr=[f for f in fr if not f.startswith('process ')]
    if 'importlib' in stack: continue
    t = 'main' if 'pub.py' in stack else ('io' if '_publisher' in stack or 'select_connection' in stack or 'ioloop' in stack.lower() else 'other')
    if any(s in fr[-1] for s in IDLE): continue
    thr[t]+=n; leaf[t][fr[-1][:100]]+=n
    seen=set()
    for f in fr:
        if f not in seen: incl[t][f[:100]]+=n; seen.add(f)
tot=sum(thr.values())
for t,c in thr.most_common(2):
    print('==',t,c,f"{c/tot*100:.0f}%")
    for k,v in leaf[t].most_common(25): print(f"   leaf {v/c*100:5.1f}% {k}")
    for k,v in incl[t].most_common(45)[5:45]: print(f"   incl {v/c*100:5.1f}% {k}")
