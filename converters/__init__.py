"""edgernn.converters: torch model -> verified ONNX (sequence + step), TensorRT and Triton exports.

``export_bundle(bundle_dir, formats, variants, target, max_streams)`` is the entry point the CLI
uses; the builders and checks below are public for custom pipelines. tensorrt is imported only
when an engine is built.
"""

from .export import FORMATS, ExportOptions, export_bundle, export_variant
from .jetson import build_from_plan, build_plan
from .onnx_sequence import build_sequence_graph
from .onnx_step import build_step_graph
from .spec import METADATA_KEY, ExportSpec, Tolerance
from .targets import TARGETS, get_target
from .tensorrt import BuildSettings, build_engine
from .triton import repository_files as triton_repository
from .trt_compat import check as check_tensorrt_compat
from .verify import verify_sequence, verify_step

__all__ = [
    "FORMATS", "METADATA_KEY", "TARGETS", "BuildSettings", "ExportOptions", "ExportSpec",
    "Tolerance", "build_engine", "build_from_plan", "build_plan", "build_sequence_graph",
    "build_step_graph", "check_tensorrt_compat", "export_bundle", "export_variant", "get_target",
    "triton_repository", "verify_sequence", "verify_step",
]
