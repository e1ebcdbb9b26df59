# Diagnostic kept as a record (caller-cpu.txt): three rounds of N delay() calls on RabbitMQ (rpc:// results, the benchmark's plugins, default window); printed per call: the loop's wall time, the calling thread's CPU, the process's CPU (the loop and the flush after it), and RabbitMQ's beam.smp CPU per message (its PID found by pgrep). Run: .venv/bin/python benchmarks/results/2026-12-06-h/caller_cpu.py 5000.
import sys, time, uuid, os, resource
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac, run, subprocess
BEAM = subprocess.run(['pgrep', '-f', 'beam.smp'], capture_output=True, text=True).stdout.split()[0]
def beam():
    f=open(f'/proc/{BEAM}/stat').read().rsplit(')',1)[1].split()
    return (int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK')

tmp = Path(f"/tmp/pub-{uuid.uuid4().hex[:8]}"); tmp.mkdir()
n = int(sys.argv[1])
try:
    url = run.amqp_url(tmp)
    app = bench_celeriac.make_app(url, None, "rpc://", None, None)
    t = app.tasks[bench_celeriac.TASK_NAME]
    t.delay(); app.flush()
    for rnd in range(3):
        b0=beam(); r0 = resource.getrusage(resource.RUSAGE_SELF); c0 = time.thread_time(); s = time.perf_counter()
        for _ in range(n): t.delay()
        e = time.perf_counter() - s; c = time.thread_time() - c0
        b1=beam(); app.flush()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        proc = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
        print(f"beam {(b1-b0)/n*1e6:.0f} us/msg; round {rnd}: {n/e:,.0f}/s wall {e/n*1e6:.1f} us, caller cpu {c/n*1e6:.1f} us, process cpu (incl flush) {proc/n*1e6:.1f} us; vol/invol ctx {r1.ru_nvcsw-r0.ru_nvcsw}/{r1.ru_nivcsw-r0.ru_nivcsw}", flush=True)
    app.close()
finally:
    run.amqp_cleanup(tmp)
