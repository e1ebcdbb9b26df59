"""Dramatiq's sequential round trips on the same RabbitMQ (Redis results): CPU per round trip by process."""
import os, sys, time, uuid, subprocess, statistics
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import run
n = int(sys.argv[1])
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def tree(pid):
    return [int(p) for p in subprocess.run(["pgrep", "-g", str(os.getpgid(pid))], capture_output=True, text=True).stdout.split()]
rabbit = int(subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout.split()[0])
redis = int(subprocess.run(["pgrep", "-f", "redis-server"], capture_output=True, text=True).stdout.split()[0])
tmp = Path(f"/tmp/rtcpud-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
try:
    url = run.amqp_url(tmp)
    prefix = f"rtd-{uuid.uuid4().hex[:6]}:"
    os.environ.update(BENCH_BROKER_URL=url, BENCH_KEY_PREFIX=prefix, BENCH_RESULTS_URL=run.redis_url())
    import bench_dramatiq
    broker, actor = bench_dramatiq.broker, bench_dramatiq.actor
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("dramatiq_")}
    env["PYTHONPATH"] = "/work/main/benchmarks:" + env.get("PYTHONPATH", "")
    w = subprocess.Popen([sys.executable, "-m", "dramatiq", "bench_dramatiq", "--processes", "1", "--threads", "4"], env=env, cwd="/work/main/benchmarks", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    actor.send().get_result(block=True, timeout=60000)
    for _ in range(300): actor.send().get_result(block=True, timeout=10000)
    pids = tree(w.pid)
    for rnd in range(3):
        w0 = sum(cpu(p) for p in pids); r0 = cpu(rabbit); d0 = cpu(redis); c0 = cpu(os.getpid())
        ts = []; s0 = time.perf_counter()
        for _ in range(n):
            s = time.perf_counter(); actor.send().get_result(block=True, timeout=10000); ts.append(time.perf_counter() - s)
        wall = time.perf_counter() - s0
        wc = sum(cpu(p) for p in pids) - w0; rc = cpu(rabbit) - r0; dc = cpu(redis) - d0; cc = cpu(os.getpid()) - c0
        print(f"Dramatiq p50 {statistics.median(ts)*1e6:.0f} us, mean {wall/n*1e6:.0f} us; CPU per round trip: client {cc/n*1e6:.0f}, worker {wc/n*1e6:.0f}, RabbitMQ {rc/n*1e6:.0f}, Redis {dc/n*1e6:.0f} us")
    os.killpg(w.pid, 2); w.wait(30)
    broker.close()
finally:
    run.amqp_cleanup(tmp)
