"""Beat's schedule in the Django database: interval, crontab, solar and one-off entries as
models, edited in the admin or through the ORM, and picked up by a running ``celeriac beat``
within a second or two.

Add ``"celeriac_django.beat"`` to ``INSTALLED_APPS`` (after ``"celeriac_django"``), run
``manage.py migrate``, and set ``[beat] schedule_store = "django://"``. Importing this package
imports nothing of Django: the ``celeriac.plugins`` entry point loads :mod:`.plugin` in every
celeriac process.
"""

__all__: list[str] = []
