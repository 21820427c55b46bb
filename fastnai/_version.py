"""The installed package version (from git via hatch-vcs at install time)."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    version = _version("fastnai")
except PackageNotFoundError:  # running from a source tree that is not installed
    version = "0.0.0+unknown"
