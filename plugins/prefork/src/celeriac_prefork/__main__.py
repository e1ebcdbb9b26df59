"""Internal: ``python -m celeriac_prefork`` is the forkserver zygote a prefork pool starts."""

import sys

from celeriac_prefork._forkserver import run

run(sys.argv[1:])
