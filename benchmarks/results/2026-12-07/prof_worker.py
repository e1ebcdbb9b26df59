"""Diagnostic: run the celeriac worker with its connection I/O thread (Link._run) under cProfile; the profile is dumped to /tmp/io-<link name>-<pid>.prof at exit. Used by rt_prof.py."""
import cProfile, pstats, sys, os, atexit, signal
from celeriac_amqp import _link
orig = _link.Link._run
profiles = []
def run(self):
    p = cProfile.Profile(); profiles.append((self._name, p))
    p.enable()
    try:
        orig(self)
    finally:
        p.disable()
        p.dump_stats(f"/tmp/io-{self._name}-{os.getpid()}.prof")
_link.Link._run = run
from celeriac._cli import main as m
sys.argv = ["celeriac", *sys.argv[1:]]
m.main()
