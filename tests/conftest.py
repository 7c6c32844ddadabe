"""Shared test setup: offline hub, a per-session model cache, one torch thread, session-scoped tiny pipelines.

Environment knobs:
* ``T2I_PROMPT_TEST_CACHE=/dir`` reuses a persistent tiny-model cache instead of a fresh temp dir per session.
* ``T2I_PROMPT_TEST_THREADS=N`` sets torch's intra-op threads (default 1: on a shared 2-core machine, OpenMP
  threads spinning against other processes made tiny UNet calls ~100x slower).
"""

from __future__ import annotations

import os
import shutil
import tempfile

# Must be set before transformers / huggingface_hub are imported anywhere.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
_OWN_CACHE = not os.environ.get("T2I_PROMPT_TEST_CACHE")
os.environ["T2I_PROMPT_CACHE"] = os.environ.get("T2I_PROMPT_TEST_CACHE") or tempfile.mkdtemp(prefix="t2i_prompt_test_")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("T2I_PROMPT_TEST_THREADS", "1")))


@pytest.fixture(scope="session", autouse=True)
def _session_cache():
    """The session's ``$T2I_PROMPT_CACHE``; removed at the end unless it was given by T2I_PROMPT_TEST_CACHE."""
    path = os.environ["T2I_PROMPT_CACHE"]
    yield path
    if _OWN_CACHE:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_path():
    """``tiny_path("sd15")`` -> the built tiny model directory (built once per session)."""
    from t2i_prompt.models.loading import resolve_model_path

    return lambda arch: resolve_model_path(f"tiny:{arch}")


def _pipeline(name: str):
    from t2i_prompt.generate import T2IPipeline

    return T2IPipeline.from_pretrained(name, device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def sd15_pipeline():
    """T2IPipeline over ``tiny:sd15`` (DDIM, 32x32 default). Shared: do not mutate its components."""
    return _pipeline("tiny:sd15")


@pytest.fixture(scope="session")
def sdxl_pipeline():
    """T2IPipeline over ``tiny:sdxl`` (Euler, two text encoders, 32x32 default)."""
    return _pipeline("tiny:sdxl")


@pytest.fixture(scope="session")
def pixel_pipeline():
    """T2IPipeline over ``tiny:pixel`` (no VAE, 16x16 RGB, defaults from t2i_sampling.json)."""
    return _pipeline("tiny:pixel")
