"""The worker: bootsteps that connect, consume and execute."""

from celeriac.worker.worker import Worker

__all__ = ["Worker"]
