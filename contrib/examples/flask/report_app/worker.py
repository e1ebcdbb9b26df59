"""The worker's entry point: ``celeriac -A report_app.worker worker``.

(``flask --app report_app celeriac worker`` needs no module: it builds the app itself.)
"""

from report_app import create_app

flask_app = create_app()
app = flask_app.extensions["celeriac"]
