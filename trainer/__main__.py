"""``python -m trainer {train,evaluate,export,ablation}``."""

from __future__ import annotations

import sys

from trainer.cli import main

if __name__ == "__main__":
    sys.exit(main())
