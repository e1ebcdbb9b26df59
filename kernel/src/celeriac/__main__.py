"""``python -m celeriac``: the command line."""

from celeriac._cli.main import main

main()
