"""Deployment targets: which TensorRT a device runs and what its GPU can do."""

from __future__ import annotations

from dataclasses import dataclass

from edgernn.runtime.errors import ConfigError


@dataclass(frozen=True)
class Target:
    """A deployment target. ``trt`` is the (major, minor) TensorRT the device ships."""

    name: str
    trt: tuple[int, int]
    max_opset: int
    gpu: str
    int8: bool
    sparse: bool
    builds_here: bool  # False: engines are tied to the device; export writes a build plan
    software: str

    @property
    def trt_version(self) -> str:
        return f"{self.trt[0]}.{self.trt[1]}"


TARGETS = {
    t.name: t
    for t in (
        Target("gpu", (10, 0), 17, "any NVIDIA GPU (sm_75+)", True, True, True,
               "TensorRT 10.x or 11.x"),
        Target("jetson-orin", (10, 3), 17, "Orin (Ampere, sm_87)", True, True, False,
               "JetPack 6 (TensorRT 10.3)"),
        Target("jetson-xavier", (8, 5), 17, "Xavier (Volta, sm_72)", True, False, False,
               "JetPack 5.1 (TensorRT 8.5)"),
        Target("jetson-nano", (8, 2), 13, "Nano (Maxwell, sm_53)", False, False, False,
               "JetPack 4.6 (TensorRT 8.2)"),
    )
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise ConfigError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[name]
