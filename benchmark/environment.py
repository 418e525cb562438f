"""Where a run ran: the `env.*` tags every run carries, and short labels of its device
for tables (seconds only compare between runs on the same device)."""
from __future__ import annotations

import os
from typing import Iterable


def environment_tags() -> dict[str, str]:
    """Where the run ran (the harness process, where first-party models run): Python,
    torch, transformers and the accelerator; a GPU's results can differ in the last
    digits (bf16 by default for LLMs there)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import torch

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "none"

    accelerator = (f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                   else f"cpu: {os.cpu_count()} cores")
    return {"env.python": platform.python_version(), "env.platform": platform.platform(),
            "env.torch": torch.__version__, "env.transformers": installed("transformers"),
            "env.accelerator": accelerator}


def short_device(accelerator: object) -> str:
    """'cuda: NVIDIA H100 80GB HBM3' -> 'H100 80GB HBM3', 'cpu: 2 cores' -> 'CPU (2 cores)';
    '?' for a run without the tag (made before runs carried it)."""
    if not isinstance(accelerator, str):
        return "?"
    if accelerator.startswith("cuda: "):
        return accelerator.removeprefix("cuda: ").removeprefix("NVIDIA ")
    if accelerator.startswith("cpu: "):
        return f"CPU ({accelerator.removeprefix('cpu: ')})"
    return "?"


def devices_label(accelerators: Iterable[object]) -> str:
    """The devices of a group of runs (seeds of one row): 'CPU (2 cores) + H100 80GB HBM3'."""
    return " + ".join(sorted({short_device(a) for a in accelerators}))
