"""Logging for the worker and beat commands, left to a ``setup_logging`` receiver if any."""

from __future__ import annotations

import logging
import sys

from celeriac._contract import signals

#: The format of every celeriac log line (the prefork zygote uses the same).
FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"


def setup_logging(level: str, logfile: str | None = None) -> None:
    """Configure the root logger, unless a ``setup_logging`` receiver is connected: then, as
    in Celery, the receiver configures logging and celeriac touches nothing."""
    loglevel = level.upper()
    if signals.setup_logging.receivers:
        signals.setup_logging.send(None, loglevel=loglevel, logfile=logfile, format=FORMAT, colorize=False)
        return
    if logfile:
        logging.basicConfig(level=loglevel, format=FORMAT, filename=logfile)
    else:
        logging.basicConfig(level=loglevel, format=FORMAT, stream=sys.stderr)
    signals.after_setup_logger.send(
        None, logger=logging.getLogger(), loglevel=loglevel, logfile=logfile, format=FORMAT, colorize=False
    )
