"""What the CPU offers the models: AMX tiles, where torch runs bfloat16 matrix products fast."""

from __future__ import annotations


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and later)."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe()) if probe is not None else False
