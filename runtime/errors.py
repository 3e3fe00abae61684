"""The typed errors edgernn raises. Each message says what was asked, what exists and what to do."""


class EdgeRNNError(Exception):
    """Base of every error edgernn raises on purpose."""


class ConfigError(EdgeRNNError, ValueError):
    """A model configuration or option is invalid or unsupported."""


class DataError(EdgeRNNError, ValueError):
    """Input data (npz, CSV, built-in dataset name) is missing, malformed or inconsistent."""


class BundleError(EdgeRNNError):
    """A bundle is missing, tampered with, truncated or of an unknown schema."""


class InputError(EdgeRNNError, ValueError):
    """A runtime input has the wrong shape or dtype, or holds NaN/Inf."""


class StreamError(EdgeRNNError, KeyError):
    """An unknown or closed stream id, or a full pool."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NotStreamableError(EdgeRNNError):
    """The model cannot be stepped one sample at a time (bidirectional)."""


class BackendUnavailableError(EdgeRNNError):
    """A runtime backend or converter needs a library or device that is not present."""


class VerificationError(EdgeRNNError):
    """An export or variant failed its check against the torch reference."""

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report or {}


class AdoptError(EdgeRNNError, TypeError):
    """A PyTorch module has a shape edgernn cannot adopt."""
