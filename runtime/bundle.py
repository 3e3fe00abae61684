"""The bundle: a self-describing directory (or .zip of one) that crosses from build side to device.

``manifest.json`` holds the schema version, model config, streaming contract, preprocessing,
variants and the sha256 of every file; weights are safetensors, graphs ONNX. Writes are atomic
(temporary sibling directory, then rename) and reads verify schema and checksums.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .errors import BundleError, ConfigError

SCHEMA_VERSION = 1
FORMAT = "edgernn-bundle"
MANIFEST = "manifest.json"
REQUIRED_KEYS = ("schema_version", "format", "model", "streaming", "preprocessing", "variants",
                 "files")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def streaming_contract(config: ModelConfig) -> dict:
    """The per-step input, state and output description recorded in the manifest."""
    if config.token_input:
        step_input = {"name": "x", "shape": [], "dtype": "int64", "meaning": "token id"}
    else:
        step_input = {"name": "x", "shape": [config.input_size], "dtype": "float32",
                      "meaning": "feature vector"}
    meaning = {
        "classification": f"logits over {config.output_size} classes",
        "regression": f"{config.output_size} predicted value(s)",
        "language_model": f"next-token logits over {config.output_size} tokens",
    }[config.task]
    if config.head == "last":
        meaning += " for the sequence seen so far"
    return {
        "streamable": config.streamable,
        "input": step_input,
        "states": [
            {"name": n, "shape": [config.num_layers, config.hidden_size], "dtype": "float32",
             "layout": "(batch, layers, hidden)", "reset_value": 0.0}
            for n in config.state_names
        ],
        "output": {"name": "y", "shape": [config.output_size], "dtype": "float32",
                   "meaning": meaning},
    }


def new_manifest(config: ModelConfig, preprocessing: dict | None = None,
                 provenance: dict | None = None, task: dict | None = None) -> dict:
    from . import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "edgernn_version": __version__,
        "model": config.to_dict(),
        "streaming": streaming_contract(config),
        "preprocessing": preprocessing or {},
        "task": task or {},
        "variants": {},
        "exports": {},
        "provenance": provenance or {},
        "files": {},
    }


class Bundle:
    """A verified, read-only view of a bundle directory."""

    def __init__(self, path: Path, manifest: dict):
        self.path = path
        self.manifest = manifest
        self.config = ModelConfig.from_dict(manifest["model"])

    @property
    def streaming(self) -> dict:
        return self.manifest["streaming"]

    @property
    def preprocessing(self) -> dict:
        return self.manifest["preprocessing"]

    @property
    def variants(self) -> dict:
        return self.manifest["variants"]

    def variant(self, name: str) -> dict:
        if name not in self.variants:
            raise BundleError(
                f"variant {name!r} is not in bundle {self.path}; it has {sorted(self.variants)}. "
                "Add it with `edgernn compress`."
            )
        return self.variants[name]

    def config_for(self, variant: str) -> ModelConfig:
        """The model config of a variant (structured pruning changes hidden sizes)."""
        info = self.variant(variant)
        return ModelConfig.from_dict(info["model"]) if "model" in info else self.config

    def file(self, rel: str) -> Path:
        if rel not in self.manifest["files"]:
            raise BundleError(f"{rel!r} is not listed in {self.path / MANIFEST}")
        return self.path / rel

    def tensors(self, variant: str = "fp32") -> dict[str, np.ndarray]:
        """The raw (still encoded) tensors of a variant; see ``edgernn.runtime.weights``."""
        from safetensors.numpy import load_file

        info = self.variant(variant)
        out: dict[str, np.ndarray] = {}
        for rel in info["files"]:
            if rel.endswith(".safetensors"):
                try:
                    out.update(load_file(str(self.file(rel))))
                except Exception as exc:  # safetensors raises its own types
                    raise BundleError(f"{rel}: cannot read safetensors ({exc})") from exc
        return out

    def __repr__(self) -> str:
        return (f"Bundle({str(self.path)!r}, cell={self.config.cell}, "
                f"variants={sorted(self.variants)})")


def read_bundle(path: str | os.PathLike, verify: bool = True) -> Bundle:
    """Open a bundle directory or .zip, validating the schema and (by default) every checksum."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"no bundle at {path}")
    if path.is_file():
        path = _extract_zip(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{path} is not a bundle: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(
            f"{manifest_path}: not valid JSON ({exc}); the file is corrupted") from exc
    _validate_schema(manifest, manifest_path)
    if verify:
        _verify_files(path, manifest)
    try:
        return Bundle(path, manifest)
    except ConfigError as exc:
        raise BundleError(f"{manifest_path}: invalid model config: {exc}") from exc


def _validate_schema(manifest: dict, where: Path) -> None:
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: manifest must be a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"{where}: manifest lacks {missing}; it is not an edgernn bundle")
    if manifest["format"] != FORMAT:
        raise BundleError(f"{where}: format is {manifest['format']!r}, expected {FORMAT!r}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise BundleError(
            f"{where}: schema version {manifest['schema_version']} is not supported "
            f"(this edgernn reads {SCHEMA_VERSION}); upgrade edgernn or re-export the bundle"
        )
    for name, info in manifest["variants"].items():
        for rel in info.get("files", []):
            if rel not in manifest["files"]:
                raise BundleError(f"{where}: variant {name!r} names {rel!r}, absent from 'files'")


def _verify_files(root: Path, manifest: dict) -> None:
    for rel, info in manifest["files"].items():
        target = root / rel
        if not target.is_file():
            raise BundleError(f"{root}: file {rel!r} listed in the manifest is missing")
        size = target.stat().st_size
        if size != info["size"]:
            raise BundleError(
                f"{root}: file {rel!r} is {size} bytes, the manifest says {info['size']} "
                "(truncated or replaced); re-export the bundle"
            )
        if sha256_file(target) != info["sha256"]:
            raise BundleError(
                f"{root}: file {rel!r} fails its sha256 check (modified or corrupted); "
                "re-export the bundle"
            )


def _extract_zip(path: Path) -> Path:
    if not zipfile.is_zipfile(path):
        raise BundleError(f"{path} is neither a bundle directory nor a zip file")
    target = Path(tempfile.mkdtemp(prefix="edgernn-bundle-"))
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                dest = (target / member).resolve()
                if not str(dest).startswith(str(target.resolve())):
                    raise BundleError(f"{path}: member {member!r} escapes the bundle directory")
            zf.extractall(target)
    except zipfile.BadZipFile as exc:
        raise BundleError(f"{path}: corrupted zip ({exc})") from exc
    roots = [p for p in target.iterdir()]
    if not (target / MANIFEST).exists() and len(roots) == 1 and roots[0].is_dir():
        return roots[0]
    return target


def pack_bundle(path: str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Write a bundle directory to a .zip, atomically."""
    bundle = read_bundle(path)
    zip_path = Path(zip_path)
    tmp = zip_path.with_name(f".{zip_path.name}.{uuid.uuid4().hex}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(bundle.path / MANIFEST, MANIFEST)
        for rel in bundle.manifest["files"]:
            zf.write(bundle.path / rel, rel)
    os.replace(tmp, zip_path)
    return zip_path


FileData = bytes | Callable[[Path], None]


def _write_files(root: Path, manifest: dict, files: dict[str, FileData]) -> None:
    for rel, data in files.items():
        if Path(rel).is_absolute() or ".." in Path(rel).parts or rel == MANIFEST:
            raise BundleError(f"invalid bundle file name {rel!r}")
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if callable(data):
            data(target)
        else:
            target.write_bytes(data)
        manifest["files"][rel] = {"sha256": sha256_file(target), "size": target.stat().st_size}


def _commit(tmp: Path, manifest: dict, out: Path, replace: bool) -> None:
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    if out.exists():
        if not replace:
            raise BundleError(f"{out} already exists; pass force=True (--force) to replace it")
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def write_bundle(out: str | os.PathLike, manifest: dict, files: dict[str, FileData],
                 force: bool = False) -> Bundle:
    """Write a new bundle atomically. ``files`` maps relative paths to bytes or writer callables."""
    out = Path(out)
    if out.exists() and not force:
        raise BundleError(f"{out} already exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        manifest = json.loads(json.dumps(manifest))
        manifest["files"] = {}
        _write_files(tmp, manifest, files)
        _commit(tmp, manifest, out, replace=force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_bundle(out)


def update_bundle(path: str | os.PathLike, files: dict[str, FileData],
                  patch: Callable[[dict], None], remove: tuple[str, ...] = ()) -> Bundle:
    """Add or replace files and edit the manifest of an existing bundle, atomically.

    The bundle is verified first; ``patch(manifest)`` edits the manifest in place.
    """
    bundle = read_bundle(path)
    out = bundle.path
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    shutil.copytree(out, tmp)
    try:
        manifest = json.loads(json.dumps(bundle.manifest))
        for rel in remove:
            manifest["files"].pop(rel, None)
            (tmp / rel).unlink(missing_ok=True)
        _write_files(tmp, manifest, files)
        patch(manifest)
        _validate_schema(manifest, tmp / MANIFEST)
        _commit(tmp, manifest, out, replace=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_bundle(out)


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict | None = None) -> bytes:
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)
