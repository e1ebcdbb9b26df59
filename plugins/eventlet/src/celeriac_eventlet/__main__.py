"""``celeriac-eventlet ARGS`` / ``python -m celeriac_eventlet ARGS``: patch, then run ``celeriac ARGS``."""


def main() -> None:
    """Patch the standard library for eventlet, then hand over to the celeriac command line."""
    import eventlet

    # First, before celeriac, the app, or any library they use is imported.
    eventlet.monkey_patch()

    from celeriac.plugin import run_cli

    run_cli(prog_name="celeriac-eventlet")


if __name__ == "__main__":
    main()
