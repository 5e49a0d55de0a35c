"""nnlcc.boards: board profiles, the on-board self-test, and bitstream / Vivado builds.

The driver calls :func:`get_board`, :func:`list_boards` and :func:`board_build`; the rest is
public for tests and benchmarks.
"""

from .build import DesignTooLargeError, board_build, synth_network
from .profiles import BoardProfile, get_board, list_boards
from .selftest import BoardSelfTest, SelfTest, SelfTestResult, simulate_selftest

__all__ = [
    "BoardProfile",
    "BoardSelfTest",
    "DesignTooLargeError",
    "SelfTest",
    "SelfTestResult",
    "board_build",
    "get_board",
    "list_boards",
    "simulate_selftest",
    "synth_network",
]
