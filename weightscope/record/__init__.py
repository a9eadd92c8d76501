"""Recording side (imports torch): :class:`Recorder` and how it selects parameters."""

from .recorder import Recorder
from .resume import resume_step
from .selection import RECORDED_TYPES, sample_indices, select_params

__all__ = ["RECORDED_TYPES", "Recorder", "resume_step", "sample_indices", "select_params"]
