"""Which device runs the model: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import os
import platform

import torch


def available_devices() -> list[str]:
    """Devices usable on this machine, best first."""
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def auto_device() -> str:
    """The best available device (CUDA > MPS > CPU)."""
    return available_devices()[0]


def device_name(device: str) -> str:
    """A human-readable name, e.g. "NVIDIA H100 80GB HBM3" or "CPU (x86_64, 2 threads)"."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return "Apple GPU (MPS)"
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {torch.get_num_threads()} threads of {os.cpu_count()} cores)"


def supports_half(device: str) -> bool:
    """Half precision is offered on CUDA only (on CPU it is slow and inexact)."""
    return device.startswith("cuda")


def pick_device(name: str) -> torch.device:
    """``auto`` -> the best available device (CUDA > MPS > CPU); else the named one."""
    return torch.device(auto_device() if name == "auto" else name)
