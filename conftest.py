"""Root pytest configuration: keep the module that runs the CLI out of doctest collection."""

collect_ignore = ["fastnai/__main__.py"]
