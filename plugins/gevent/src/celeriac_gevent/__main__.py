"""``celeriac-gevent ARGS`` / ``python -m celeriac_gevent ARGS``: patch, then run ``celeriac ARGS``."""


def main() -> None:
    """Patch the standard library for gevent, then hand over to the celeriac command line."""
    from gevent import monkey

    # First, before celeriac, the app, or any library they use is imported.
    monkey.patch_all()

    from celeriac.plugin import run_cli

    run_cli(prog_name="celeriac-gevent")


if __name__ == "__main__":
    main()
