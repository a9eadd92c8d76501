"""Recording side (imports torch): :class:`Recorder` and how it selects parameters."""

from .recorder import Recorder
from .selection import RECORDED_TYPES, sample_indices, select_params

__all__ = ["RECORDED_TYPES", "Recorder", "sample_indices", "select_params"]
