"""Sequential round trips: CPU per round trip of the client, the worker and RabbitMQ, against the wall time."""
import os, sys, time, uuid, subprocess, statistics
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac, run
n = int(sys.argv[1]); store = sys.argv[2] if len(sys.argv) > 2 else "rpc://"
MODE = os.environ.get("CPU_MODE", "all")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    u, k = int(f[11]), int(f[12])
    v = {"all": u + k, "user": u, "sys": k}[MODE]
    return v / os.sysconf("SC_CLK_TCK")
def tree(pid):
    out = subprocess.run(["pgrep", "-g", str(os.getpgid(pid))], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]
rabbit = int(subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout.split()[0])
tmp = Path(f"/tmp/rtcpu-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
try:
    url = run.amqp_url(tmp)
    app = bench_celeriac.make_app(url, None, store, None, None)
    t = app.tasks[bench_celeriac.TASK_NAME]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(BENCH_BROKER_URL=url, BENCH_RESULT_STORE=store, PYTHONPATH="/work/main/benchmarks:" + env.get("PYTHONPATH", ""))
    w = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "prof_worker.py"), "-A", "bench_celeriac", "worker", "-P", "threads", "-c", "4", "--loglevel", "WARNING"], env=env, cwd="/work/main/benchmarks", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t.delay().get(timeout=60)
    for _ in range(300): t.delay().get(timeout=10)
    pids = tree(w.pid)
    import threading
    def tcpu(tid):
        f = open(f"/proc/{os.getpid()}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    names = {th.native_id: th.name for th in threading.enumerate()}
    for rnd in range(3):
        t0 = {tid: tcpu(tid) for tid in names}
        wt0 = {}
        for p in pids:
            for tid in os.listdir(f"/proc/{p}/task"):
                f = open(f"/proc/{p}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
                wt0[(p, int(tid))] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        w0 = sum(cpu(p) for p in pids); r0 = cpu(rabbit); c0 = cpu(os.getpid())
        ts = []; s0 = time.perf_counter()
        for _ in range(n):
            s = time.perf_counter(); t.delay().get(timeout=10); ts.append(time.perf_counter() - s)
        wall = time.perf_counter() - s0
        wc = sum(cpu(p) for p in pids) - w0; rc = cpu(rabbit) - r0; cc = cpu(os.getpid()) - c0
        wt = {}
        for p in pids:
            for tid in os.listdir(f"/proc/{p}/task"):
                f = open(f"/proc/{p}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
                wt[(p, int(tid))] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        if rnd == 0:
            dump = subprocess.run(["/work/main/.venv/bin/py-spy", "dump", "--pid", str(w.pid)], capture_output=True, text=True).stdout
            print(dump[:200])
            import re
            wnames = {}
            for m in re.finditer(r'Thread (0x[0-9A-F]+|\d+) \((\w+)\): "([^"]+)"', dump): pass
            print([l for l in dump.splitlines() if l.startswith("Thread")])
        print("  worker threads:", sorted(((round((v - wt0.get(k, 0))/n*1e6), k[1]) for k, v in wt.items()), reverse=True)[:8])
        print("  threads:", ", ".join(f"{names[tid]} {(tcpu(tid)-t0[tid])/n*1e6:.0f}" for tid in names))
        print(MODE, f"p50 {statistics.median(ts)*1e6:.0f} us, mean {wall/n*1e6:.0f} us; CPU per round trip: client {cc/n*1e6:.0f}, worker {wc/n*1e6:.0f}, RabbitMQ {rc/n*1e6:.0f} us")
    os.killpg(w.pid, 2); w.wait(30)
    app.close()
finally:
    run.amqp_cleanup(tmp)
