"""The adder graph's operations and its node record (:mod:`nnlcc.ir.adder_graph` describes
what each operation computes); a module of its own so that what reads a graph's nodes
(:mod:`nnlcc.ir.fanout`) needs no import of the graph."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["SELECT_OPS", "Node", "Op"]


class Op(enum.Enum):
    INPUT = "input"
    CONST = "const"
    ADD = "add"
    SHR = "shr"
    CLAMP = "clamp"
    MAX = "max"
    MIN = "min"


#: Two-operand selections: a comparator and a multiplexer in hardware, no adder.
SELECT_OPS = (Op.MAX, Op.MIN)


@dataclass(frozen=True, slots=True)
class Node:
    op: Op
    a: int = -1  # first operand (node id); for INPUT the input index
    b: int = -1  # second operand of ADD, MAX, MIN
    sa: int = 0  # left shift of a (ADD); shift amount k (SHR)
    sb: int = 0  # left shift of b (ADD)
    na: bool = False  # a negated (ADD)
    nb: bool = False  # b negated (ADD)
    c0: int = 0  # CONST value; CLAMP lower bound
    c1: int = 0  # CLAMP upper bound
    lo: int = 0  # exact range of the value
    hi: int = 0
