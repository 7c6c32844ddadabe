"""Shared helpers: atomic file writes, cache location, device/dtype choice, generators, prompt files."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import torch

CACHE_ENV = "T2I_PROMPT_CACHE"


def cache_dir() -> Path:
    """Root of t2i-prompt's cache: ``$T2I_PROMPT_CACHE`` or ``~/.cache/t2i_prompt``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "t2i_prompt").expanduser()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temp file in the target's directory, then ``os.replace`` it (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the user's usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; done once at import, before any thread starts
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _umask() -> int:
    return _UMASK


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Atomically write ``obj`` as UTF-8 JSON (keys kept in insertion order)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default) + "\n")


def save_run_results(path: str | os.PathLike | None, args, results: Any) -> Any:
    """Write ``{"args": vars(args), "results": results}`` atomically when ``path`` is given (eval scripts' --out);
    returns ``results``."""
    if path:
        atomic_write_json(path, {"args": vars(args), "results": results})
    return results


def _json_default(obj: Any):
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, (torch.dtype, torch.device)):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def atomic_save_image(image, path: str | os.PathLike, format: str | None = None) -> Path:
    """Save a PIL image atomically; the format comes from the suffix unless given (``.png`` -> PNG)."""
    import io

    path = Path(path)
    fmt = format or {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return atomic_write_bytes(path, buf.getvalue())


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def select_device_dtype(device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None) -> tuple[torch.device, torch.dtype]:
    """Pick (device, dtype): CUDA fp16 when a GPU is present, else CPU fp32; either can be overridden.

    fp16 is only chosen automatically on CUDA (CPU fp16 kernels are slow or missing).
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was requested but CUDA is not available; use device='cpu'.")
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    elif isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"Unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}.")
        dtype = _DTYPES[dtype]
    return device, dtype


def read_prompt_lines(path: str | os.PathLike, flag: str = "prompt file") -> list[str]:
    """Prompts of a text file, one per line; blank lines and lines starting with '#' are skipped. A binary or
    non-UTF-8 file is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path} does not exist (a text file with one prompt per line).")
    data = path.read_bytes()
    prompts = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{flag} {path}, line {number}: not UTF-8 text; give a text file with one prompt "
                             "per line.") from None
        if "\x00" in line:
            raise ValueError(f"{flag} {path}, line {number}: holds a NUL byte (a binary file?); give a text file "
                             "with one prompt per line.")
        line = line.strip()
        if line and not line.startswith("#"):
            prompts.append(line)
    return prompts


def make_generators(seeds: Iterable[int], device: str | torch.device = "cpu") -> list[torch.Generator]:
    """One ``torch.Generator`` per seed, so each sample's randomness depends on its own seed only."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
