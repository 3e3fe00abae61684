"""edgernn.runtime: load a bundle and stream a recurrent model one sample at a time.

The device-side floor: imports numpy only. onnxruntime, tensorrt and torch are imported lazily,
each inside its own backend module.
"""

__version__ = "0.1.0"

from .bundle import Bundle, pack_bundle, read_bundle  # noqa: E402
from .config import ModelConfig  # noqa: E402
from .errors import (  # noqa: E402
    BackendUnavailableError,
    BundleError,
    EdgeRNNError,
    InputError,
    NotStreamableError,
    StreamError,
)
from .pool import StreamPool  # noqa: E402
from .sampling import generate, sample  # noqa: E402
from .state import State  # noqa: E402
from .stream import StreamingModel, load  # noqa: E402

__all__ = [
    "Bundle", "ModelConfig", "read_bundle", "pack_bundle",
    "load", "StreamingModel", "StreamPool", "State", "sample", "generate",
    "EdgeRNNError", "BundleError", "InputError", "StreamError", "NotStreamableError",
    "BackendUnavailableError",
]
