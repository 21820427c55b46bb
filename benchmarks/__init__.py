"""asv benchmark suite of fastnai (see asv.conf.json at the repository root)."""
