"""run.py's publish phase alone (its Side classes, its Settings), the two celeriac layouts alternating."""
import sys, time, tempfile
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import run
settings = run.Settings(n=20000, m=500, repeats=3, broker=run.BROKERS["redis"], workers=2, concurrency=4, pool="threads",
                        amqp_confirms="async", prefetch=None, celery_poll_interval=None, celery_sqlite_defaults=False)
for rnd in range(3):
    for cls in (run.CeleriacKombuSide, run.CeleriacSide):
        tmp = Path(tempfile.mkdtemp())
        side = cls(tmp, settings)
        first = side.publish(); first.ready(); side.flush()
        handles = []
        t = time.perf_counter()
        for i in range(settings.n):
            handles.append(side.publish())
        rate = settings.n / (time.perf_counter() - t)
        print(cls.__name__, f"{rate:,.0f}/s", flush=True)
        side.close(); settings.broker.cleanup(tmp)
