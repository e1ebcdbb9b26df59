"""``celeriac -A celeriac_flask.entry:app``: the celeriac app of the Flask app ``FLASK_APP`` names.

``flask celeriac ...`` starts celeriac's command line with this path, and a prefork pool's
forkserver imports it afresh in its own interpreter. The Flask app is built when ``app`` is
read (PEP 562), not when this module is imported, and found as ``flask --app`` finds it:
``FLASK_APP`` (``module``, ``module:name`` or ``module:create_app()``), else ``wsgi.py`` or
``app.py`` in the current directory.
"""

from __future__ import annotations

import os

from celeriac import Celeriac
from celeriac import ConfigError


def __getattr__(name: str) -> Celeriac:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from flask.cli import NoAppException
    from flask.cli import ScriptInfo

    from celeriac_flask._extension import EXTENSION_KEY

    path = os.environ.get("FLASK_APP") or None
    try:
        flask_app = ScriptInfo(app_import_path=path, set_debug_flag=False).load_app()
    except NoAppException as exc:
        raise ConfigError(f"no Flask app to run celeriac for: {exc}") from exc
    celeriac_app = flask_app.extensions.get(EXTENSION_KEY)
    if not isinstance(celeriac_app, Celeriac):
        raise ConfigError(
            f"the Flask app {flask_app.name!r} has no celeriac app: call FlaskCeleriac().init_app(app) "
            "in its factory"
        )
    return celeriac_app
