"""Run 2:4-masked Linear layers through torch's semi-structured sparse kernels (CUDA sm80+).

Sparse Tensor Cores (NVIDIA Ampere and newer, compute capability >= 8.0) execute a matmul
whose weight keeps at most 2 of every 4 consecutive inputs at up to twice the dense rate.
torch exposes them as ``torch.sparse.to_sparse_semi_structured`` (cuSPARSELt backend, or
CUTLASS when cuSPARSELt is missing). Everywhere else (CPU, older GPUs) weightscope keeps the
masked dense layer, which computes the same numbers.

Examples
--------
>>> from weightscope.kernels import semi_structured_available, semi_structured_status
>>> import torch
>>> semi_structured_available("cpu")
False
>>> semi_structured_status("cpu").startswith("unavailable")
True
"""

from __future__ import annotations

import torch
from torch import nn

from weightscope.errors import ConfigError, StructureError

__all__ = [
    "semi_structured_available",
    "semi_structured_status",
    "to_semi_structured_linear",
]

_MIN_CAPABILITY = (8, 0)
_DTYPES = (torch.float16, torch.bfloat16)


def _cuda_device(device: torch.device | str | int | None) -> torch.device | str:
    """The CUDA device to check, or a reason string why there is none."""
    if device is None:
        if not torch.cuda.is_available():
            return "torch sees no CUDA device"
        return torch.device("cuda", torch.cuda.current_device())
    device = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
    if device.type != "cuda":
        return f"device {device} is not a CUDA device"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    index = torch.cuda.current_device() if device.index is None else device.index
    return torch.device("cuda", index)


def _backend_class() -> type:
    """torch's semi-structured tensor class to use (cuSPARSELt if present, else CUTLASS)."""
    sparse = torch.sparse
    cusparselt = getattr(torch.backends, "cusparselt", None)
    forced = sparse.SparseSemiStructuredTensor._FORCE_CUTLASS
    if cusparselt is not None and cusparselt.is_available() and not forced:
        return sparse.SparseSemiStructuredTensorCUSPARSELT
    return sparse.SparseSemiStructuredTensorCUTLASS


def semi_structured_status(device: torch.device | str | int | None = None) -> str:
    """One line saying whether 2:4 semi-structured kernels can run on ``device`` and why not.

    ``device=None`` checks the current CUDA device. The line starts with ``"available"`` or
    ``"unavailable"``.

    Examples
    --------
    >>> semi_structured_status("cpu")
    'unavailable: device cpu is not a CUDA device; the masked dense path is used'
    """
    if not hasattr(torch.sparse, "to_sparse_semi_structured"):
        return "unavailable: this torch build has no torch.sparse.to_sparse_semi_structured"
    dev = _cuda_device(device)
    if isinstance(dev, str):
        return f"unavailable: {dev}; the masked dense path is used"
    capability = torch.cuda.get_device_capability(dev)
    if capability < _MIN_CAPABILITY:
        return (
            f"unavailable: {dev} has compute capability {capability[0]}.{capability[1]}, "
            "sparse Tensor Cores need >= 8.0; the masked dense path is used"
        )
    backend = _backend_class().BACKEND
    return f"available: {dev} (sm{capability[0]}{capability[1]}, {backend} backend)"


def semi_structured_available(device: torch.device | str | int | None = None) -> bool:
    """True when torch's 2:4 semi-structured kernels can run on ``device`` (CUDA sm80+).

    See :func:`semi_structured_status` for the reason when False.

    Examples
    --------
    >>> semi_structured_available("cpu")
    False
    """
    return semi_structured_status(device).startswith("available")


def _masked_weight(linear: nn.Linear, mask: torch.Tensor | None) -> torch.Tensor:
    """The dense weight with ``mask`` applied, checked to be 2:4 along ``in_features``."""
    weight = linear.weight.detach()
    out_f, in_f = weight.shape
    if in_f % 4:
        raise StructureError(
            f"to_semi_structured_linear needs in_features divisible by 4; got a Linear of "
            f"weight shape {(out_f, in_f)}. Keep this layer dense."
        )
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.shape != weight.shape:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ConfigError(
                f"to_semi_structured_linear: mask must be a tensor of the weight's shape "
                f"{(out_f, in_f)}; got {got}. Pass mask=mask_24_1d(linear.weight)."
            )
        weight = weight * mask.to(device=weight.device, dtype=weight.dtype)
    per_group = (weight != 0).view(out_f, in_f // 4, 4).sum(-1)
    if bool((per_group > 2).any()):
        raise StructureError(
            "to_semi_structured_linear needs at most 2 nonzeros in every 4 consecutive inputs "
            f"(2:4 along in_features); the weight of shape {(out_f, in_f)} has groups with "
            f"{int(per_group.max())}. Pass mask=mask_24_1d(linear.weight) or prune it first."
        )
    return weight


def _check_shape(weight: torch.Tensor, cls: type) -> None:
    limits = cls._DTYPE_SHAPE_CONSTRAINTS[weight.dtype]
    rows, cols = limits.sparse_min_rows, limits.sparse_min_cols
    out_f, in_f = weight.shape
    if out_f % rows or in_f % cols:
        raise StructureError(
            f"to_semi_structured_linear ({cls.BACKEND} backend, {weight.dtype}) needs "
            f"out_features a multiple of {rows} and in_features a multiple of {cols}; got "
            f"weight shape {(out_f, in_f)}. Keep this layer dense."
        )


@torch.no_grad()
def to_semi_structured_linear(linear: nn.Linear, mask: torch.Tensor | None = None) -> nn.Linear:
    """Replace ``linear.weight`` by torch's 2:4 semi-structured sparse tensor, in place.

    For inference only: the new weight does not require grad. The bias stays dense.

    Parameters
    ----------
    linear : torch.nn.Linear
        A float16/bfloat16 Linear on a CUDA device of compute capability >= 8.0.
    mask : torch.Tensor, optional
        Bool mask of the weight's shape (e.g. :func:`mask_24_1d` or :func:`mask_24_2d`); it is
        applied before conversion. Without it the weight must already be 2:4 along inputs.

    Returns
    -------
    torch.nn.Linear
        The same module, now computing ``x @ (w * mask).T + b`` with sparse kernels.

    Raises
    ------
    ConfigError
        Not a Linear, a mask of the wrong shape, a dtype other than float16/bfloat16, or no
        suitable GPU (see :func:`semi_structured_status`).
    StructureError
        The (masked) weight is not 2:4 along ``in_features`` or its shape does not meet the
        backend's multiples.

    Examples
    --------
    >>> import torch
    >>> from weightscope.kernels import mask_24_1d, semi_structured_available
    >>> layer = torch.nn.Linear(64, 64).half()
    >>> mask = mask_24_1d(layer.weight)
    >>> if semi_structured_available():  # CUDA sm80+ only; elsewhere keep the masked layer
    ...     layer = to_semi_structured_linear(layer.cuda(), mask=mask.cuda())
    >>> layer.out_features
    64
    """
    if not isinstance(linear, nn.Linear):
        raise ConfigError(
            f"to_semi_structured_linear needs a torch.nn.Linear; got {type(linear).__name__}. "
            "Convert Linear layers only (convolutions keep the masked dense path)."
        )
    weight = _masked_weight(linear, mask)
    if weight.dtype not in _DTYPES:
        raise ConfigError(
            "to_semi_structured_linear needs a float16 or bfloat16 weight (what sparse Tensor "
            f"Cores run); got {weight.dtype}. Convert the layer first, e.g. linear.half()."
        )
    status = semi_structured_status(weight.device)
    if not status.startswith("available"):
        raise ConfigError(
            "to_semi_structured_linear needs a CUDA GPU with compute capability >= 8.0; "
            f"{status}. Keep the masked dense layer (same numbers) or move it to such a GPU."
        )
    cls = _backend_class()
    _check_shape(weight, cls)
    if cls is torch.sparse.SparseSemiStructuredTensorCUSPARSELT:
        sparse = torch.sparse.to_sparse_semi_structured(weight.contiguous())
    else:
        sparse = cls.from_dense(weight.contiguous())
    linear.weight = nn.Parameter(sparse, requires_grad=False)
    return linear
