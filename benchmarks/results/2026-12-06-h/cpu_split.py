# Diagnostic kept as a record (cpu-split.txt): one run of run.py's amqp scenarios for one framework (celeriac or Dramatiq), with the CPU time of each process group (this client, the workers, RabbitMQ's beam.smp, everything else: Redis) per phase, from /proc. Run: .venv/bin/python benchmarks/results/2026-12-06-h/cpu_split.py celeriac.
"""Per-process CPU during each phase of run.py's celeriac (or dramatiq) run on amqp."""
import os, sys, time, glob, collections
sys.path.insert(0, "/work/main/benchmarks")
import run
TICK = os.sysconf("SC_CLK_TCK")
def snapshot():
    out = collections.Counter()
    for d in glob.glob("/proc/[0-9]*"):
        try:
            stat = open(d + "/stat").read()
            cmd = open(d + "/cmdline").read().replace("\0", " ")
        except OSError:
            continue
        f = stat.rsplit(")", 1)[1].split()
        cpu = (int(f[11]) + int(f[12])) / TICK
        if "beam.smp" in cmd: key = "rabbitmq"
        elif ("worker" in cmd and "celeriac" in cmd) or "dramatiq" in cmd or "bench_dramatiq" in cmd: key = "workers"
        elif "run.py" in cmd or "cpu_split" in cmd: key = "client"
        else: key = "other"
        out[key] += cpu
    return out, time.perf_counter()
class D:
    def __init__(self): self.marks = []
    def phase(self, label, total): self.marks.append((label, snapshot()))
    def advance(self, amount=1): pass
fw = sys.argv[1] if len(sys.argv) > 1 else "celeriac"
args = run.parse_args(["--broker", "amqp", "--peers", "none"] + sys.argv[2:])
settings = run.Settings(n=args.n, m=args.m, repeats=1, broker=args.broker_config, workers=args.workers, concurrency=args.concurrency, pool=args.pool, amqp_confirms=args.amqp_confirms, prefetch=args.prefetch, celery_poll_interval=args.celery_poll_interval, celery_sqlite_defaults=False)
d = D()
res = run.run_once(fw, settings, d, fw)
d.marks.append(("end", snapshot()))
print(fw, f"publish {res.publish_per_s:,.0f}/s drain {res.drain_per_s:,.0f}/s rt {res.round_trip_median_ms:.2f} ms")
for (label, (a, ta)), (_, (b, tb)) in zip(d.marks, d.marks[1:]):
    wall = tb - ta
    per = settings.n if "publish" in label or "drain" in label else settings.m
    parts = "  ".join(f"{k} {(b[k]-a[k])/wall*100:4.0f}% ({(b[k]-a[k])/per*1e6:5.0f} us/task)" for k in ("client", "workers", "rabbitmq", "other"))
    print(f"  {label:28s} {wall:6.2f} s  {parts}")
