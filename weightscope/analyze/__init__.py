"""Offline analyzers: pure functions from a run (``xarray.Dataset``) to named results.

They never import torch, read runs lazily block by block (memory is bounded by
``weightscope.store.reader.READ_BLOCK_BYTES`` per worker thread, not by the run), and follow
DESIGN.md section 4 exactly.

=========================  ==============================================================
:func:`active_sets`        active / inactive fractions per snapshot (Figure 1 left)
:func:`search_distance`    cumulative exact search distance (Figure 1 middle, one run)
:func:`distance_vs_weights`  total distance vs weights added (Figure 1 middle, a family)
:func:`decay_time`         per-weight decorrelation time, fraction of training
:func:`decay_by_magnitude`   median decay time per final-|w| bin (Figure 1 right)
:func:`figure1_data`       all three panels at once; :func:`summary` their numbers
:func:`exploration`        explored fraction, flip rate, mask distance of a sparse run
=========================  ==============================================================

On a cluster: the analyzers build ordinary dask graphs (module-level kernels over the run's
stored chunks), so they run unchanged on ``dask.distributed``: open a ``Client`` and call them
as usual; the workers read the chunks themselves (keep the run on storage they can reach: an
object store URL or a shared filesystem) and the results are bit-identical to a local run.
``weightscope analyze --scheduler tcp://HOST:8786`` does this from the command line.
"""

from .decay import decay_by_magnitude, decay_time
from .distance import distance_vs_weights, participating_weights, search_distance
from .exploration import exploration, exploration_summary
from .figure1 import Figure1Data, figure1_data, summary
from .sets import active_sets, thresholds

__all__ = [
    "Figure1Data",
    "active_sets",
    "decay_by_magnitude",
    "decay_time",
    "distance_vs_weights",
    "exploration",
    "exploration_summary",
    "figure1_data",
    "participating_weights",
    "search_distance",
    "summary",
    "thresholds",
]
