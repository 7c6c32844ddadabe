"""Content-keyed, resumable storage: cache keys, weight fingerprints, a file cache, atomic directories, checkpoints.

Every cache entry is keyed by *what determines it* (the fingerprint of the weights, every setting, the inputs),
never by a model name or path that can point at new weights tomorrow. Every write is atomic (temp + rename), so
a run killed at any point leaves only complete entries and a restart recomputes nothing already on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

CACHE_VERSION = 1
_FINGERPRINTS: dict[tuple, str] = {}  # (path, size, mtime_ns) -> sha256, so a file is hashed once per process


def cache_key(*parts: Any) -> str:
    """sha256 of the JSON of ``parts`` (sorted keys): equal inputs -> equal key, in any process or run."""
    blob = json.dumps([CACHE_VERSION, *parts], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------- fingerprints
def _file_digest(path: Path) -> str:
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _FINGERPRINTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FINGERPRINTS[memo] = h.hexdigest()
    return _FINGERPRINTS[memo]


def fingerprint_path(path: str | os.PathLike) -> str:
    """sha256 over every file under ``path`` (relative name + content hash); a file alone is hashed directly.

    Weights, configs, tokenizer and scheduler files all change what a model does, so all of them count.
    """
    path = Path(path)
    if path.is_file():
        return _file_digest(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(f"{f.relative_to(path).as_posix()}\0{_file_digest(f)}\n".encode())
    return h.hexdigest()


def fingerprint_module(module) -> str:
    """sha256 of an in-memory ``torch.nn.Module``'s state dict (names, dtypes, shapes, bytes)."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def fingerprint(obj: Any) -> str:
    """Content fingerprint of a model given as a local path (its files), a module, or an object whose modules
    (``modules()`` like ``T2IPipeline``, or ``model``) carry the weights. Resolve model *names* to paths first
    (``models.loading.resolve_model_path``): a name alone says nothing about the weights behind it."""
    import torch

    if isinstance(obj, (str, os.PathLike)):
        return fingerprint_path(obj)
    if isinstance(obj, torch.nn.Module):
        return fingerprint_module(obj)
    modules = obj.modules() if callable(getattr(obj, "modules", None)) else [getattr(obj, "model", None)]
    modules = [m for m in modules if isinstance(m, torch.nn.Module)]
    if not modules:
        raise TypeError(f"cannot fingerprint a {type(obj).__name__}: give a model name, a path or a torch module.")
    return cache_key(*[fingerprint_module(m) for m in modules])


# ------------------------------------------------------------------------------------------- file cache
class ContentCache:
    """Files under ``root``: ``<kind>/<k[:2]>/<k>.json`` and ``images/<k[:2]>/<k>.png``, written atomically."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.rendered = 0  # images rendered by this process in this run
        self.reused = 0  # images found on disk

    def path(self, kind: str, key: str, suffix: str = ".json") -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def load_json(self, kind: str, key: str) -> Any | None:
        path = self.path(kind, key)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def save_json(self, kind: str, key: str, value: Any) -> None:
        from .utils import atomic_write_json

        atomic_write_json(self.path(kind, key), value)

    def image(self, key: str, render: Callable[[], Any]):
        """The cached image for ``key``, rendering (and saving) it only when it is not on disk."""
        from PIL import Image

        from .utils import atomic_save_image

        path = self.path("images", key, ".png")
        if path.is_file():
            self.reused += 1
            with Image.open(path) as im:
                return im.convert("RGB")
        image = render().convert("RGB")
        atomic_save_image(image, path)
        self.rendered += 1
        return image


# ------------------------------------------------------------------------------------------- atomic directories
def replace_dir(src: Path, target: Path) -> None:
    """Move the complete directory ``src`` to ``target``. An existing ``target`` is first renamed aside and deleted
    only once ``src`` is in place; a kill between the two renames leaves it findable by ``recover_dir``."""
    src, target = Path(src), Path(target)
    if not target.exists():
        os.replace(src, target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, old)
    try:
        os.replace(src, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover_dir(target: str | Path) -> Path | None:
    """``target`` if it exists; else the copy ``replace_dir`` moved aside before a crash (restored); else None."""
    target = Path(target)
    if target.exists():
        return target
    aside = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not aside:
        return None
    os.replace(aside[-1], target)
    return target


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temp directory beside ``target``; on success it becomes ``target`` (never half-written)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class StepCheckpoints:
    """Step-numbered checkpoint directories under ``root`` plus a ``LATEST`` pointer file replaced atomically.

    ``save(step, write)`` writes ``checkpoint-<step>`` completely, then points ``LATEST`` at it, then deletes
    older ones: at every instant one complete checkpoint is findable, whatever point a kill hits.
    """

    POINTER = "LATEST"

    def __init__(self, root: str | Path, prefix: str = "checkpoint"):
        self.root, self.prefix = Path(root), prefix

    def latest(self) -> Path | None:
        pointer = self.root / self.POINTER
        if pointer.is_file():
            path = self.root / pointer.read_text().strip()
            if path.is_dir():
                return path
        legacy = self.root / self.prefix  # layout of older runs: one `checkpoint/` directory
        return recover_dir(legacy)

    def save(self, step: int, write: Callable[[Path], None]) -> Path:
        from .utils import atomic_write_text

        final = self.root / f"{self.prefix}-{step:08d}"
        with atomic_dir(final) as tmp:
            write(tmp)
        atomic_write_text(self.root / self.POINTER, final.name)
        for other in self.root.glob(f"{self.prefix}*"):
            if other != final and other.is_dir():
                shutil.rmtree(other, ignore_errors=True)
        return final


def save_dataset(dataset, target: str | Path) -> None:
    """``datasets.Dataset.save_to_disk`` into a temp dir beside ``target``, then swapped in (``replace_dir``)."""
    with atomic_dir(target) as tmp:
        dataset.save_to_disk(str(tmp))
