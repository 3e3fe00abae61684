"""Build plans for engines that must be built on the device (Jetson), and building from them.

A TensorRT engine is tied to the GPU and TensorRT version it was built with, so for Jetson
targets export writes the ONNX, the build settings, an ``edgernn build-engine`` command and the
equivalent ``trtexec`` line; ``build_from_plan`` runs on the device and stores the engine.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from edgernn.runtime.bundle import read_bundle, update_bundle
from edgernn.runtime.errors import BundleError

from .targets import Target, get_target
from .tensorrt import BuildSettings, build_engine


def engine_path(variant_stem: str, target: str) -> str:
    return f"tensorrt/{variant_stem}-step-{target}.plan"


def trtexec_line(onnx_rel: str, engine_rel: str, settings: BuildSettings, target: Target) -> str:
    shapes = {
        flag: ",".join(f"{name}:{'x'.join(str(d) for d in shape[k])}"
                       for name, shape in settings.profile.items())
        for k, flag in enumerate(("--minShapes", "--optShapes", "--maxShapes"))
    }
    parts = ["trtexec", f"--onnx={onnx_rel}", f"--saveEngine={engine_rel}",
             *(f"{flag}={value}" for flag, value in shapes.items())]
    if settings.precision in ("int8", "mixed"):
        parts.append("--stronglyTyped" if target.trt >= (10, 0) else "--int8 --fp16")
    elif settings.precision == "fp16" and target.trt < (11, 0):
        parts.append("--fp16")
    if settings.sparse:
        parts.append("--sparsity=enable")
    if settings.timing_cache:
        parts.append(f"--timingCacheFile={settings.timing_cache}")
    memory = (f"--memPoolSize=workspace:{settings.workspace_mb}M" if target.trt >= (8, 4)
              else f"--workspace={settings.workspace_mb}")
    return " ".join([*parts, memory])


def build_plan(variant: str, variant_stem: str, onnx_rel: str, settings: BuildSettings,
               target: Target) -> dict:
    engine_rel = engine_path(variant_stem, target.name)
    return {
        "variant": variant, "target": target.name, "device": target.gpu,
        "software": target.software, "tensorrt": target.trt_version, "onnx": onnx_rel,
        "engine": engine_rel, "settings": settings.to_dict(),
        "command": f"edgernn build-engine BUNDLE --variant {variant} --target {target.name}",
        "trtexec": f"cd BUNDLE && {trtexec_line(onnx_rel, engine_rel, settings, target)}",
    }


def build_from_plan(bundle_dir, variant: str = "fp32", target: str | None = None) -> dict:
    """Build the engine a bundle's plan describes, here, and store it in the bundle."""
    bundle = read_bundle(bundle_dir)
    plans = bundle.manifest.get("exports", {}).get("tensorrt", {}).get(variant, {})
    if target is None and len(plans) == 1:
        target = next(iter(plans))
    if target not in plans:
        raise BundleError(
            f"{bundle.path} has no TensorRT build plan for variant {variant!r} and target "
            f"{target!r} (it has {sorted(plans) or 'none'}); run `edgernn export {bundle.path} "
            f"--format tensorrt --variant {variant} --target TARGET` first")
    get_target(target)
    plan = json.loads(bundle.file(plans[target]["plan"]).read_text())
    settings = BuildSettings(**plan["settings"])
    scratch = Path(tempfile.mkdtemp(prefix="edgernn-trt-"))
    try:
        cache = scratch / "timing.cache"
        if settings.timing_cache in bundle.manifest["files"]:
            shutil.copyfile(bundle.file(settings.timing_cache), cache)
        engine, report = build_engine(bundle.file(plan["onnx"]).read_bytes(), settings, cache)
        files = {plan["engine"]: engine}
        if settings.timing_cache and cache.is_file():
            files[settings.timing_cache] = cache.read_bytes()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def patch(manifest: dict) -> None:
        manifest["exports"]["tensorrt"][variant][target].update(
            engine=plan["engine"], status="built", build=report)

    update_bundle(bundle.path, files, patch)
    return report
