import sys, os
sys.path.insert(0, "/work/main/benchmarks")
import bench_celeriac
n = int(sys.argv[1]); prefix = sys.argv[2]
app = bench_celeriac.make_app("redis://127.0.0.1:6379/14", prefix, None, None, None)
t = app.tasks[bench_celeriac.TASK_NAME]
for _ in range(n):
    h = t.delay()
print(h.id)
app.close()
