import collections, sys
# inclusive % per (depth-limited) call path under the loop line of pub.py
c=collections.Counter(); tot=0
depth=int(sys.argv[2]) if len(sys.argv)>2 else 6
for line in open(sys.argv[1]):
    stack,_,n=line.rstrip().rpartition(' '); n=int(n)
    if 'pub.py' not in stack: continue
    fr=[f for f in stack.split(';') if not f.startswith('process ')]
    if any(s in fr[-1] for s in ("wait (threading","select (selectors","poll (")): continue
    tot+=n
    i=[k for k,f in enumerate(fr) if 'pub.py' in f][-1]
    path=[]
    for f in fr[i+1:i+1+depth]:
        name=f.split(' (')[0]
        path.append(name)
        c[tuple(path)]+=n
for k,v in sorted(c.items()):
    if v/tot>0.01: print(f"{v/tot*100:5.1f}% " + "  "*(len(k)-1) + k[-1])
