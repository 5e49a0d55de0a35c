"""nnlcc: compile trained neural networks into multiplier-free FPGA hardware."""

from nnlcc.errors import NnlccError

__version__ = "0.1.0"
__all__ = ["NnlccError", "__version__"]
