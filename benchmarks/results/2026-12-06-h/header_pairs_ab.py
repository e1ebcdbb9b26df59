# Diagnostic kept as a record (header-pairs-ab.txt): 2,000 Celery-protocol header tables with fresh ids, encoded by this tree's _table.py and by an older one extracted to /tmp/base (git archive 2bd94ee kernel plugins | tar -x -C /tmp/base); medians of 7 rounds. Run from the repository root with the venv's python.
import importlib.util, timeit, uuid, statistics
from celeriac_amqp import _table as new
spec = importlib.util.spec_from_file_location("old_table", "/tmp/base/plugins/amqp/src/celeriac_amqp/_table.py")
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
def h(): return {'lang': 'py', 'task': 'x.noop', 'id': str(uuid.uuid4()), 'shadow': None, 'eta': None, 'expires': None, 'group': None, 'group_index': None, 'retries': 0, 'timelimit': [None, None], 'root_id': str(uuid.uuid4()), 'parent_id': None, 'argsrepr': '()', 'kwargsrepr': '{}', 'origin': 'gen8640@vm', 'ignore_result': False, 'replaced_task_nesting': 0, 'stamped_headers': None, 'stamps': {}}
hs=[h() for _ in range(2000)]
for x in hs: assert new.encode_table(x) == old.encode_table(x)
o=[];w=[]
for _ in range(7):
    o.append(timeit.timeit(lambda: [old.encode_table(x) for x in hs], number=20)/20/2000*1e6)
    w.append(timeit.timeit(lambda: [new.encode_table(x) for x in hs], number=20)/20/2000*1e6)
print("old %.2f us new %.2f us ratio %.2f" % (statistics.median(o), statistics.median(w), statistics.median(o)/statistics.median(w)))
