"""nnlcc.sim: bit-exact cocotb verification of generated hardware (Verilator, else Icarus)."""

from .runner import SimResult, available_simulators, run_cocotb
from .verify import verify_network

__all__ = ["SimResult", "available_simulators", "run_cocotb", "verify_network"]
