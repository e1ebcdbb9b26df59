"""Found by autodiscovery: no module imports this one."""

from __future__ import annotations

from celeriac_django import get_app

app = get_app()


@app.task
def double(x: int) -> int:
    return 2 * x
