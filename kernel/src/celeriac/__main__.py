"""``python -m celeriac``: the command line."""

from celeriac.cli import main

main()
