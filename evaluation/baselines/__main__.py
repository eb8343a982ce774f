"""Serve the bundled baselines as one OpenAI-compatible endpoint: ``python -m evaluation.baselines``."""

from __future__ import annotations

import argparse
import logging

from evaluation.baselines import BASELINES
from evaluation.baselines.server import PolicyServer
from evaluation.registry import load_object


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--only", nargs="*", choices=sorted(BASELINES), help="serve only these baselines")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    names = args.only or sorted(BASELINES)
    policies = []
    for name in names:
        logging.info("loading baseline %s", name)
        policies.append(load_object(BASELINES[name].policy)())
    server = PolicyServer(*policies, host=args.host, port=args.port, latency=args.latency)
    logging.info("serving %s at %s", ", ".join(names), server.base_url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
