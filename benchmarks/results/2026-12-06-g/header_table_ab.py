import importlib.util, timeit, sys
from celeriac_amqp import _table as new
spec = importlib.util.spec_from_file_location("old_table", "/tmp/base/plugins/amqp/src/celeriac_amqp/_table.py")
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
h = {'lang': 'py', 'task': 'bench.noop', 'id': '0861124c-d50b-4153-bde8-b3c3af06422c', 'shadow': None, 'eta': None, 'expires': None, 'group': None, 'group_index': None, 'retries': 0, 'timelimit': [None, None], 'root_id': '0861124c-d50b-4153-bde8-b3c3af06422c', 'parent_id': None, 'argsrepr': '()', 'kwargsrepr': '{}', 'origin': 'gen12164@vm', 'ignore_result': False, 'replaced_task_nesting': 0, 'stamped_headers': None, 'stamps': {}}
assert new.encode_table(h) == old.encode_table(h)
n = 20000; o=[]; w=[]
for _ in range(7):
    o.append(timeit.timeit(lambda: old.encode_table(h), number=n) / n * 1e6)
    w.append(timeit.timeit(lambda: new.encode_table(h), number=n) / n * 1e6)
import statistics
print("old median %.2f us, new median %.2f us, ratio %.2f" % (statistics.median(o), statistics.median(w), statistics.median(o)/statistics.median(w)))
