"""celeriac for Flask: the :class:`FlaskCeleriac` extension (application factories and
``init_app``), configuration from Flask's config, tasks run inside the Flask app context,
and ``flask celeriac ...``. See docs/flask.md."""

from celeriac_flask._config import FILE_KEY
from celeriac_flask._config import TABLE_KEY
from celeriac_flask._extension import EXTENSION_KEY
from celeriac_flask._extension import FlaskCeleriac
from celeriac_flask._task import FlaskTask

__all__ = ["EXTENSION_KEY", "FILE_KEY", "TABLE_KEY", "FlaskCeleriac", "FlaskTask"]
