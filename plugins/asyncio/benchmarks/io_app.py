"""The app the I/O-bound benchmark's workers load: the same 100 ms wait, as a coroutine and as a function."""

from __future__ import annotations

import asyncio
import os
import time

from celeriac import Celeriac

app = Celeriac("io", broker=os.environ.get("IO_BENCH_BROKER", "sqlite:///io.sqlite3"), config=False, env={})


@app.task(name="io.wait_async")
async def wait_async(seconds: float) -> None:
    await asyncio.sleep(seconds)


@app.task(name="io.wait_sync")
def wait_sync(seconds: float) -> None:
    time.sleep(seconds)
