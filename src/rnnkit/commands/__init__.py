"""CLI subcommands, one module per application. Each module defines
``register(subparsers) -> None``, adding its parsers; every parser sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit code. The CLI imports the modules
listed in :data:`COMMAND_MODULES` that exist."""

COMMAND_MODULES = ["text", "classify", "translate", "forecast", "anomaly", "speech", "audit",
                   "export", "serve", "music", "vision"]
