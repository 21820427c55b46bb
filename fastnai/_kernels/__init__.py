"""Numba kernels: pure functions on float64 SI arrays and scalars (no xarray, no I/O)."""
