"""Sweeps on Dask (``fastnai.sweeps``): throughput on 1 and 2 worker processes, and the cost of a
sweep point over a bare ``fastnai.run``.

Both suites start their LocalCluster in ``setup`` and warm every worker with a small sweep (the
workers load the Numba cache there), so that cluster start-up and compilation are not timed;
each timed sweep writes into a fresh folder (``resume=False`` semantics: every point runs, its
netCDF is written, and the merged file is written at the end).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from pathlib import Path

import fastnai
from fastnai.sweeps import LOCAL_CLUSTER_QUIET, sweep

from .models import seed_case_path

#: The throughput sweep: the TiC/TiO2 seed case over 64 donor densities, on the shipped mesh
#: (3000 nodes: 3 ms of solving and 10 ms to write the 0.3 MB netCDF of 28 variables, so the
#: sweep machinery and the file writes dominate) and on 20 000 nodes (16 ms of solving, a 2 MB
#: point file, a 113 MB merged file).
THROUGHPUT_VARY = {"semiconductor.donor_density": "1e17 cm^-3:1e19 cm^-3:64:log"}


def _cluster(n_workers: int):
    """A LocalCluster of ``n_workers`` processes with one Numba thread each, and its client."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           silence_logs=logging.ERROR, **LOCAL_CLUSTER_QUIET,
                           env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    return cluster, Client(cluster)


def _band_bending_overrides(n_nodes: int) -> dict:
    """Seed case on ``n_nodes`` graded nodes (first cell 0.01 nm while it fits)."""
    return {"mesh.n_nodes": n_nodes, "mesh.min_spacing": min(1e-11, 0.5 * 100e-9 / (n_nodes - 1))}


class TimeSweepThroughput:
    """64 band-bending points on 1 or 2 worker processes; the time ratio is the speed-up."""

    params = ([1, 2], [3000, 20_000])
    param_names = ["n_workers", "n_nodes"]
    number = 1
    repeat = 5
    warmup_time = 0.0
    timeout = 600

    def setup(self, n_workers, n_nodes):
        self.cluster, self.client = _cluster(n_workers)
        self.folder = Path(tempfile.mkdtemp(prefix="fastnai-bench-sweep-"))
        self.overrides = _band_bending_overrides(n_nodes)
        sweep(seed_case_path(), {"semiconductor.donor_density": "1e17 cm^-3:1e19 cm^-3:4:log"},
              overrides=self.overrides, output_dir=self.folder / "warm", scheduler=self.client,
              n_threads=1, progress=False)

    def teardown(self, n_workers, n_nodes):
        self.client.close()
        self.cluster.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_sweep_64_points(self, n_workers, n_nodes):
        sweep(seed_case_path(), THROUGHPUT_VARY, overrides=self.overrides,
              output_dir=self.folder / uuid.uuid4().hex, scheduler=self.client, n_threads=1,
              progress=False)


#: Points of about one second on one thread: a drift-diffusion 1C discharge, rest and charge
#: at a tight tolerance (0.3 MB of output), and the band-bending seed case on 1.2 million nodes
#: (115 MB of profiles, so the netCDF writes dominate its overhead).
SECOND_POINTS = {
    "drift_diffusion": ("drift_diffusion_ticn_tio2_discharge.toml", {"solver.rtol": 1e-7}, 40),
    "band_bending": ("band_bending_ticn_tio2.toml", _band_bending_overrides(1_200_000), 100),
}


class TimePointOverhead:
    """A 0.5-1 s point run bare (``fastnai.run``, in memory and written to netCDF) and as
    sweeps of 4 such points on a 1-worker LocalCluster and in-process
    (``scheduler="synchronous"``), all on one Numba thread. Overhead per point: sweep time / 4
    - bare time. A sweep writes every point's file and the merged file, so an output-heavy
    point (band bending on 1.2 million nodes, 115 MB) pays its write about twice."""

    params = list(SECOND_POINTS)
    param_names = ["model"]
    number = 1
    repeat = 3
    warmup_time = 0.0
    timeout = 600

    def setup(self, model):
        import numba

        name, self.overrides, iterations = SECOND_POINTS[model]
        self.case = seed_case_path(name)
        # four copies of the point: a Newton iteration cap that is never reached
        self.vary = {"solver.max_iterations": [iterations + k for k in range(4)]}
        self.threads = numba.get_num_threads()
        numba.set_num_threads(1)
        self.cluster, self.client = _cluster(1)
        self.folder = Path(tempfile.mkdtemp(prefix="fastnai-bench-overhead-"))
        fastnai.run(self.case, self.overrides)
        sweep(self.case, {"solver.max_iterations": [iterations]}, overrides=self.overrides,
              output_dir=self.folder / "warm", scheduler=self.client, n_threads=1,
              progress=False)

    def teardown(self, model):
        import numba

        numba.set_num_threads(self.threads)
        self.client.close()
        self.cluster.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_bare_run(self, model):
        fastnai.run(self.case, self.overrides)

    def time_bare_run_written(self, model):
        """The point as ``fastnai run`` does it: the result written to netCDF."""
        fastnai.run(self.case, self.overrides, output=self.folder / "bare.nc")

    def time_sweep_4_points_one_worker(self, model):
        sweep(self.case, self.vary, overrides=self.overrides,
              output_dir=self.folder / uuid.uuid4().hex, scheduler=self.client, n_threads=1,
              progress=False)

    def time_sweep_4_points_in_process(self, model):
        sweep(self.case, self.vary, overrides=self.overrides,
              output_dir=self.folder / uuid.uuid4().hex, scheduler="synchronous", n_threads=1,
              progress=False)
