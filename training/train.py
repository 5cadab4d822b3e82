"""Entry point of the training job: ``python -m training.train`` (also under torchrun).

Thin on purpose: parse the arguments (``SM_*`` defaults, ``SM_HPS``, command line) and hand off
to ``training.pipeline.run``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from training.config import parse_args
from training.pipeline import RunResult, run


def main(argv: Sequence[str] | None = None) -> RunResult | None:
    """Run one training job; returns the result on rank 0 and ``None`` on other ranks."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    data_args, hyper = parse_args(argv)
    return run(data_args, hyper, emit=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main(sys.argv[1:])
