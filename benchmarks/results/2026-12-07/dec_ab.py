import timeit, sys, importlib.util
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m
new = load("t_new", "/work/main/plugins/amqp/src/celeriac_amqp/_table.py")
old = load("t_old", "/tmp/base/plugins/amqp/src/celeriac_amqp/_table.py")
import uuid
tid = str(uuid.uuid4())
headers = {"lang": "py", "task": "bench.noop", "id": tid, "shadow": None, "eta": None, "expires": None,
    "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": tid, "parent_id": None,
    "argsrepr": "()", "kwargsrepr": "{}", "origin": "gen1234@host", "ignore_result": False, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}}
table = new.encode_table(headers)
assert new.decode_table(table) == old.decode_table(table)
n = 20000
best = {"old": 1e9, "new": 1e9}
for r in range(8):
    for name, m in (("old", old), ("new", new)):
        t = min(timeit.repeat(lambda: m.decode_table(table), number=n, repeat=5)) / n
        best[name] = min(best[name], t); print(f"{name}: {t*1e6:.2f} us", end="  ")
    print()
print("best", {k: round(v*1e6, 2) for k, v in best.items()})
