"""The distilforge core: hookspecs, plugin manager, config, run store, round loop and CLI."""

__version__ = "0.1.0"
