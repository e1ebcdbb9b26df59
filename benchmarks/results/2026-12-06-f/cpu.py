# Ad hoc: a backlog of N no-op tasks (backlog.py), then a prefork worker (-c 2) drains it; CPU seconds per process from /proc during the drain, per task. Paths are those of the machine it ran on.
"""Drain N backlog tasks with a prefork worker; report rate and CPU s per process."""
import os, sys, subprocess, time, redis, uuid
sys.path.insert(0, "/work/main/benchmarks")
N = int(sys.argv[1]); pool = sys.argv[2] if len(sys.argv) > 2 else "prefork"
prefix = f"cpu{uuid.uuid4().hex[:6]}:"
subprocess.run(["/work/main/.venv/bin/python", "/tmp/prof/backlog.py", str(N), prefix], check=True, stdout=subprocess.DEVNULL)
r = redis.Redis(db=14)
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tick
    except OSError: return 0.0
def tree(pid):
    out = [pid]
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError: continue
            if ppid == pid: out += tree(int(p))
    return out
redis_pid = int(subprocess.check_output(["pgrep", "-x", "redis-server"]).split()[0])
env = {**os.environ, "BENCH_BROKER_URL": "redis://127.0.0.1:6379/14", "BENCH_KEY_PREFIX": prefix}
w = subprocess.Popen(["/work/main/.venv/bin/python", "-m", "celeriac", "-A", "bench_celeriac", "worker", "-P", pool, "-c", "2" if pool == "prefork" else "4", "-l", "WARNING"], cwd="/work/main/benchmarks", env=env)
def done():
    return len(r.keys(prefix + "celery-task-meta-*")) if False else r.dbsize()
# wait for first results
key = prefix + "celery-task-meta-*"
def count():
    n = 0
    for _ in r.scan_iter(key, count=10000): n += 1
    return n
while count() < 2000: time.sleep(0.05)
pids = tree(w.pid); c0 = {p: cpu(p) for p in pids}; r0 = cpu(redis_pid); t0 = time.monotonic(); n0 = count()
while (n1 := count()) < N - 2000: time.sleep(0.2)
t1 = time.monotonic(); c1 = {p: cpu(p) for p in pids}; r1 = cpu(redis_pid)
rate = (n1 - n0) / (t1 - t0)
print(f"rate {rate:,.0f}/s over {n1-n0} tasks")
for p in pids:
    print(f"  pid {p}: {(c1[p]-c0[p])/(t1-t0):.2f} cores, {(c1[p]-c0[p])/(n1-n0)*1e6:.0f} us/task")
print(f"  redis: {(r1-r0)/(t1-t0):.2f} cores, {(r1-r0)/(n1-n0)*1e6:.0f} us/task")
w.terminate(); w.wait()
for k in r.scan_iter(prefix + "*", count=10000): r.delete(k)
