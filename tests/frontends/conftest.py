"""The CNN frontend tests build their torch models with ``tests/unit/conv_models.py``, which
``tests/unit/test_conv_golden.py`` shares; put that folder on the import path."""

from __future__ import annotations

import sys
from pathlib import Path

UNIT = str(Path(__file__).resolve().parents[1] / "unit")
if UNIT not in sys.path:
    sys.path.insert(0, UNIT)
