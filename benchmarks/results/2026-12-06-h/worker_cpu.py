# Diagnostic kept as a record (worker-cpu.txt): one celeriac worker (threads -c 4) drains N tasks published beforehand; printed: its rate and CPU per task, and each thread's context switches and CPU per task. Run: .venv/bin/python benchmarks/results/2026-12-06-h/worker_cpu.py 5000.
"""Publish N tasks, run one celeriac worker (threads -c 4), count its system calls and CPU per task."""
import os, sys, time, uuid, subprocess
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac, run
n = int(sys.argv[1])
def io(pid):
    d = dict(l.split(": ") for l in open(f"/proc/{pid}/io").read().splitlines())
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(d["syscr"]), int(d["syscw"]), (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
tmp = Path(f"/tmp/wsys-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
try:
    url = run.amqp_url(tmp)
    app = bench_celeriac.make_app(url, None, "rpc://", None, None)
    t = app.tasks[bench_celeriac.TASK_NAME]
    first = t.delay(); app.flush()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(BENCH_BROKER_URL=url, BENCH_RESULT_STORE="rpc://", PYTHONPATH="/work/main/benchmarks:" + env.get("PYTHONPATH", ""))
    w = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "bench_celeriac", "worker", "-P", "threads", "-c", "4", "--loglevel", "WARNING"], env=env, cwd="/work/main/benchmarks", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first.get(timeout=60)
    hs = [t.delay() for _ in range(n)]
    app.flush()
    # the worker drains as they are published; measure from now on a second batch for a clean window
    hs[-1].get(timeout=120)
    hs = [t.delay() for _ in range(n)]
    app.flush()
    tids = ",".join(os.listdir(f"/proc/{w.pid}/task"))
    dump = subprocess.run(["/work/main/.venv/bin/py-spy", "dump", "--pid", str(w.pid)], capture_output=True, text=True).stdout
    import re
    names = {}
    for m in re.finditer(r'Thread (\S+) \((?:idle|active|gil)[^)]*\): "([^"]+)"', dump):
        names[m.group(1)] = m.group(2)
    def sw():
        out = {}
        for tid in os.listdir(f"/proc/{w.pid}/task"):
            st = open(f"/proc/{w.pid}/task/{tid}/status").read()
            v = int(re.search(r"voluntary_ctxt_switches:\s+(\d+)", st).group(1)); nv = int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", st).group(1))
            f = open(f"/proc/{w.pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            out[tid] = (v, nv, (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))
        return out
    print(dump[:3000])
    s0 = sw()
    a = io(w.pid); s = time.perf_counter()
    hs[-1].get(timeout=120)
    e = time.perf_counter() - s; b = io(w.pid)
    s1 = sw()
    for tid in sorted(s1, key=lambda t: -(s1[t][0] - s0.get(t, (0, 0, 0))[0])):
        a0 = s0.get(tid, (0, 0, 0)); a1 = s1[tid]
        print(f"tid {tid}: voluntary {(a1[0]-a0[0])/n:.2f}/task, involuntary {(a1[1]-a0[1])/n:.2f}/task, cpu {(a1[2]-a0[2])/n*1e6:.0f} us/task")
    print(f"n={n}: {n/e:,.0f}/s while published beforehand; per task: {(b[0]-a[0])/n:.2f} read syscalls, {(b[1]-a[1])/n:.2f} write syscalls, {(b[2]-a[2])/n*1e6:.0f} us CPU")
    os.killpg(w.pid, 2); w.wait(30)
    app.close()
finally:
    run.amqp_cleanup(tmp)
