"""edgernn: train, compress, export and stream quantized recurrent models on edge devices.

Importing this package is cheap; the torch-backed parts load on first use.
"""

from edgernn.runtime import __version__
from edgernn.runtime.config import ModelConfig

__all__ = ["ModelConfig", "__version__", "adopt", "RecurrentModel"]


def __getattr__(name: str):
    if name == "adopt":
        from edgernn.adoption import adopt

        return adopt
    if name == "RecurrentModel":
        from edgernn.models import RecurrentModel

        return RecurrentModel
    raise AttributeError(f"module 'edgernn' has no attribute {name!r}")
