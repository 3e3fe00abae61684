"""Compression: int8 / fp16 quantization and pruning, written as scored variants of a bundle."""

from edgernn.compress.pipeline import compress_bundle

__all__ = ["compress_bundle"]
