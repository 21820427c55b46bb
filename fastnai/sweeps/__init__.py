"""Parameter sweeps and ensembles: many ``fastnai.run`` points on Dask, merged into one Dataset.

A sweep runs one case at many values of some of its keys. Every point is one
:func:`fastnai.run` with ``--set``-style overrides, run as a task on a Dask cluster
(:mod:`dask.distributed`): a ``LocalCluster`` sized to the machine by default, or any scheduler
(an address such as ``tcp://node17:8786``, a scheduler file, a ``distributed.Client``, or a
cluster object such as a ``dask_jobqueue.SLURMCluster``). Each point is written to its own
netCDF file the moment it finishes; the merged Dataset, whose swept keys are dimensions, is
written when all points are done.

Values of a key
---------------
``vary`` maps a case key, named as in ``--set`` (``semiconductor.donor_density``, or
``protocol.0.current_density`` for entry 0 of ``[[protocol]]``), to its values:

- a range ``"START:STOP:NUM"`` or ``"START:STOP:NUM:log"``: NUM values from START to STOP, both
  included, evenly spaced (``lin``, the default) or evenly spaced in the logarithm (``log``).
  START and STOP are read like case values: bare numbers in the unit ``fastnai schema`` lists
  for the key, or strings with units (``"1e17 cm^-3:1e19 cm^-3:5:log"``, ``"4.2 eV:4.8 eV:4"``).
  Values are rounded to 15 significant digits, so ``4.4`` is the value a case would hold;
- ``"lognormal:MEDIAN:SIGMA:NUM"``: the NUM quantiles at probabilities (k + 1/2)/NUM of a
  lognormal distribution with that median and log-standard deviation SIGMA (so that equal
  weights represent the distribution: a particle-size ensemble);
- a comma-separated list ``"4.1 eV,4.3 eV"`` or a TOML array ``"[100, 200]"`` (each item a TOML
  literal, or a string such as ``planar``), or a Python list or array.

Each value is converted to SI and range-checked as the case loader does, and the case of every
point is validated before any point runs, so a bad value is a :class:`~fastnai.errors.CaseError`
naming the key and nothing is written. Several keys make a grid: the outer product, with the
dimensions in the order given and the points numbered in C order (the last key fastest).
``zip=True`` pairs the keys instead (equal numbers of values) along one dimension,
``sweep_point`` (not ``point``, which is already the Gauss-point dimension of 2D film_stress
results), with every key a coordinate along it.

Files
-----
``output_dir`` holds::

    sweep.json                   definition: case, fixed overrides, swept keys and values
    manifest.csv                 one row per point: index, status, wall time, values, error
    points/000000.nc             result of point 0, written atomically when it finishes
    points/000003.failed.json    error of a point that failed
    sweep.nc                     the merged Dataset (``output`` puts it elsewhere)

The workers write the point files, so ``output_dir`` must be a folder they reach: any folder
for a LocalCluster, a shared filesystem for workers on other nodes. A sweep resumes by default:
it runs only the points without a ``.nc`` file (failed points are tried again), after checking
that ``sweep.json`` describes the same sweep (same case, overrides and values). ``resume=False``
deletes the earlier point files first. A killed sweep (Ctrl-C, SIGTERM, a lost job) therefore
loses only the points that were running.

Merged Dataset
--------------
Every variable of the points gains the sweep dimensions in front: the swept keys (a grid) or
``sweep_point`` (zip). A swept key's coordinate holds its SI values with ``units`` (UDUNITS,
e.g. ``m-3``; ``1`` for dimensionless numbers and integers; none for strings and booleans) and
``long_name`` (the key's description). The point results must have the same variables on the
same dimension names (sweeping ``model.geometry`` from planar to sphere changes ``x`` into
``r`` and is refused). A dimension whose coordinate differs between points (the adaptive time
steps ``t`` of a transient model, or ``x`` when the thickness is swept) is merged by ``join``:

- ``"pad"`` (default): the dimension is renamed ``<dim>_index`` (position within each point)
  and its coordinate becomes a variable over the sweep dimensions and ``<dim>_index``, padded
  with NaN past each point's length (the CF "incomplete multidimensional array" layout). Every
  value of every point is kept, without interpolation;
- ``"outer"``: the union of the coordinate values, with NaN where a point has no value (for
  meshes that share most of their nodes; coordinates must not repeat values);
- ``"exact"``: a different coordinate is an error.

Dimensions whose coordinate is the same in every point keep it as an index. Besides the model's
variables the merged Dataset has ``status`` (``"ok"``, ``"failed"`` or ``"missing"``: not run
yet), ``error`` (the error type and message of a failed point, else ``""``), and ``run_<name>``
for every numeric attribute of the point results (``run_wall_time_s``, solver statistics).
The values of failed and missing points are NaN (integer variables become float then) and the
variables say so in ``nan_means``. The global attributes are those of SPEC 2.2 (``case`` is the
resolved base case, ``wall_time_s`` the sum over the points), the attributes all points share,
and ``sweep_*`` attributes describing the sweep.

Ensembles
---------
An ensemble is a sweep over a key whose values are samples: random seeds (``seeds=N`` adds the
model's ``*.seed`` key, e.g. ``nucleation.seed`` of deposition, with N consecutive values from
the case's seed) or a particle-size distribution (``semiconductor.thickness`` is the particle
radius of the ``sphere`` geometry of drift_diffusion and band_bending; ``lognormal:...``
gives its quantiles). ``ensemble=KEY`` (implied by ``seeds``) adds ``<var>_mean`` and
``<var>_std`` over that dimension for every numeric variable, plus ``ensemble_count`` (members
that ran); see :func:`ensemble_stats` for the estimators, the weights and how time series with
different time steps are put on a common grid first.

Sweep files
-----------
A sweep file is a TOML file with a ``[sweep]`` table; ``fastnai sweep FILE`` runs it and
:func:`sweep` accepts its path as ``case``::

    [sweep]
    case = "../cases/band_bending_ticn_tio2.toml"   # relative to this file; or put the case's
                                                    # tables ([model], ...) in this file
    output_dir = "results/sweep_band_bending"       # relative to the working directory
    zip = false                                     # optional, as are all keys below
    join = "pad"
    seeds = 8                                       # adds the model's seed key (ensembles)
    ensemble = "nucleation.seed"                    # adds mean and std over this key
    weights = "volume"                              # or a list, one weight per value
    variables = ["interface_field", "band_bending"]  # keep only these in sweep.nc
    plot = ["interface_field"]                      # figures written by the command line

    [sweep.vary]                                    # key = spec, as for --vary
    "semiconductor.donor_density" = "1e17 cm^-3:1e19 cm^-3:5:log"
    "contact.work_function" = ["4.1 eV", "4.4 eV", "4.7 eV"]

    [sweep.set]                                     # fixed overrides of every point (--set)
    "mesh.n_nodes" = 1000

Keys may be quoted (``"mesh.n_nodes"``) or written as TOML dotted keys. Arguments given to
:func:`sweep` (or on the command line) take precedence over the file.

Command line
------------
::

    fastnai sweep CASE|SWEEPFILE --vary KEY=SPEC [--vary ...] [--zip] [--set KEY=VALUE ...]
        [--seeds N] [--ensemble KEY] [--weights volume|W1,W2,...]
        [--scheduler local|threads|synchronous|ADDRESS|FILE] [--workers N] [--threads N]
        [-o DIR|FILE.nc] [--no-resume] [--join pad|outer|exact] [--variables VAR,VAR]
        [--points-per-task K] [--plot VAR ...] [--dry-run] [--array-task [INDEX]] [--merge] [-q]

(:func:`add_parser`, :func:`cli_main`). Progress goes to stderr as plain :mod:`logging` lines
(a tqdm bar instead when stdout and stderr are terminals). ``--threads N`` is the number of
Numba threads of each point, with ``fastnai run``'s default: ``NUMBA_NUM_THREADS`` if set, else
all cores. Each worker runs one point at a time, so a LocalCluster gets ``cores // N`` workers;
with neither ``--threads`` nor ``NUMBA_NUM_THREADS`` it divides the cores among its workers
(``--workers``, default one per core), ``cores // workers`` threads each. For batch
systems without Dask, ``--array-task`` runs the points of one array task (index from
``SLURM_ARRAY_TASK_ID`` or ``PBS_ARRAY_INDEX``) in-process and ``--merge`` merges afterwards.

Exit statuses: 0 every point ran; 1 some points failed with errors other than non-convergence,
or ``--merge`` found points not yet run; 2 bad input (nothing ran); 3 some points did not
converge (and none failed otherwise); 4 interrupted (SIGTERM or Ctrl-C): the finished points
are saved, run the same command again to resume. With 1 and 3 the merged file is still written
and says which points failed.

Modules
-------
:mod:`~fastnai.sweeps.plan` (values and points, sweep files), :mod:`~fastnai.sweeps.files` (the
sweep folder, one point into its file), :mod:`~fastnai.sweeps.execute` (Dask, batch array tasks,
:func:`sweep`), :mod:`~fastnai.sweeps.merge`, :mod:`~fastnai.sweeps.ensemble`,
:mod:`~fastnai.sweeps.plot`, :mod:`~fastnai.sweeps.cli`.
"""

from .cli import add_parser, cli_main
from .ensemble import ensemble_stats
from .execute import (
    ARRAY_INDEX_VARIABLES,
    LOCAL_CLUSTER_QUIET,
    SCHEDULERS,
    array_index_from_environment,
    run_array_task,
    sweep,
)
from .merge import merge
from .plan import JOINS, POINT_DIM, Axis, Plan, parse_vary, plan_sweep, read_sweep_file, values_for
from .plot import plot_sweep

__all__ = ["sweep", "plan_sweep", "merge", "run_array_task", "ensemble_stats", "values_for",
           "parse_vary", "read_sweep_file", "array_index_from_environment", "plot_sweep",
           "add_parser", "cli_main", "Plan", "Axis", "POINT_DIM", "JOINS", "SCHEDULERS",
           "LOCAL_CLUSTER_QUIET", "ARRAY_INDEX_VARIABLES"]
