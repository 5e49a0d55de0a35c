"""Register copies: a register read by more readers than the schedule's fanout bound is
duplicated, one copy per group of readers.

Why: a register whose readers are spread over the chip drives one long net; on the digits MLP
placed on ECP5, one delayed copy feeding adders of many output rows took 4.5 ns of a 6.6 ns
path. Copies of the register, each driving one group of readers, let the placer put each copy
near its group; the long route moves to the net feeding the copies, which ends in flip-flops.

What a *register* is here: a node the schedule registers (at its own stage) and every delayed
copy of a node (a stage after its own, :meth:`~nnlcc.ir.adder_graph.AdderGraph.delays`).
Inputs and combinational nodes are wires and are never duplicated. A *reader* of a register
is one sink of its net:

* an operand of an ADD, CLAMP, MAX or MIN node reading it at that stage;
* the next delayed copy of the same node (each of its copies is one reader);
* an output of the graph leaving from it;
* through SHR nodes (wiring, at every stage: :meth:`~nnlcc.ir.adder_graph.AdderGraph.delays`
  delays an SHR's root, never the SHR), each reader of an SHR of it: the shifted wire is the
  same net.

A register with ``r > bound`` readers gets ``ceil(r / bound)`` copies. Its readers, sorted by
the first graph output each one feeds (readers of the same output tree are placed together)
and then by id, are cut into that many contiguous groups of (nearly) equal size: copy ``c``
drives group ``c``. Copies are planned from each node's last delayed copy back to the node
itself, since the copies of a later stage are readers of the stage before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnlcc.ir.adder_graph import AdderGraph

__all__ = ["RegisterCopies", "plan_copies"]

#: one sink of a register's net: (kind, ids...), sorted with its group key
_OPERAND, _TAP, _OUTPUT = 0, 1, 2
_Reader = tuple[int, ...]


@dataclass
class RegisterCopies:
    """Where a graph's registers are duplicated and which copy each reader reads.

    ``copies[(k, t)]``: copies of the register holding node ``k`` at stage ``t`` (listed only
    when more than one). ``operand[(i, slot)]``: the copy node ``i``'s operand ``slot`` (0:
    ``a``, 1: ``b``) reads; ``tap[(k, t, c)]``: the copy of ``(k, t - 1)`` that copy ``c`` of
    ``(k, t)`` is fed from; ``output[j]``: the copy output ``j`` leaves from. Absent: copy 0.
    A read through an SHR node names the copy of the SHR's root register."""

    bound: int = 0
    copies: dict[tuple[int, int], int] = field(default_factory=dict)
    operand: dict[tuple[int, int], int] = field(default_factory=dict)
    tap: dict[tuple[int, int, int], int] = field(default_factory=dict)
    output: dict[int, int] = field(default_factory=dict)

    def count(self, node: int, stage: int) -> int:
        """Copies of the register of ``node`` at ``stage`` (1 when not duplicated)."""
        return self.copies.get((node, stage), 1)

    def duplicated(self, node: int) -> bool:
        """Whether any register of ``node`` (its own or a delayed copy) is duplicated."""
        return any(k == node for k, _ in self.copies)

    @property
    def extra_registers(self) -> list[tuple[int, int, int]]:
        """``(node, stage, extra copies)`` of every duplicated register."""
        return [(k, t, n - 1) for (k, t), n in sorted(self.copies.items())]


def _homes(g: AdderGraph) -> list[int]:
    """The first graph output each node feeds (``len(outputs)`` if none): readers with the
    same home belong to the same output tree."""
    from nnlcc.ir.adder_graph import SELECT_OPS, Op

    none = len(g.outputs)
    home = [none] * len(g.nodes)
    for j, o in enumerate(g.outputs):
        home[o] = min(home[o], j)
    for i in range(len(g.nodes) - 1, -1, -1):
        n = g.nodes[i]
        if n.op in (Op.INPUT, Op.CONST):
            continue
        home[n.a] = min(home[n.a], home[i])
        if n.op is Op.ADD or n.op in SELECT_OPS:
            home[n.b] = min(home[n.b], home[i])
    return home


def plan_copies(g: AdderGraph, bound: int) -> RegisterCopies:
    """The register copies of ``g``'s schedule for at most ``bound`` readers per register
    (``bound`` 0: none)."""
    from nnlcc.ir.adder_graph import SELECT_OPS, Op

    plan = RegisterCopies(bound=bound)
    if bound <= 0:
        return plan
    st, rd = g.schedule(), g.reads
    delays = g.delays()
    lat = g.latency
    nodes = g.nodes
    home = _homes(g)

    # an SHR is wiring at every stage: a read of it is a read of its root's register there
    root = g.roots()
    direct: dict[tuple[int, int], list[tuple[int, _Reader]]] = {}

    def read(o: int, t: int, who: _Reader, h: int) -> None:
        if nodes[root[o]].op is not Op.CONST:
            direct.setdefault((root[o], t), []).append((h, who))

    for i, n in enumerate(nodes):
        if n.op is Op.ADD or n.op in SELECT_OPS:
            read(n.a, rd[i], (_OPERAND, i, 0), home[i])
            read(n.b, rd[i], (_OPERAND, i, 1), home[i])
        elif n.op is Op.CLAMP:
            read(n.a, rd[i], (_OPERAND, i, 0), home[i])
    for j, o in enumerate(g.outputs):
        read(o, lat, (_OUTPUT, j), j)

    def assign(k: int, t: int, readers: list[tuple[int, _Reader]]) -> list[int]:
        """Cut ``readers`` of register ``(k, t)`` into copies; the home of each copy."""
        n = -(-len(readers) // bound)
        if n <= 1:
            return [min((h for h, _ in readers), default=len(g.outputs))]
        plan.copies[(k, t)] = n
        readers.sort()
        base, extra = divmod(len(readers), n)
        homes, at = [], 0
        for c in range(n):
            size = base + (c < extra)
            group = readers[at : at + size]
            at += size
            homes.append(group[0][0])
            if c == 0:
                continue
            for _, who in group:
                if who[0] == _OPERAND:
                    plan.operand[(who[1], who[2])] = c
                elif who[0] == _TAP:
                    plan.tap[(who[1], who[2], who[3])] = c
                else:
                    plan.output[who[1]] = c
        return homes

    for k in range(len(nodes) - 1, -1, -1):
        n = nodes[k]
        if n.op is Op.CONST or root[k] != k:
            continue
        s = st[k]
        later: list[int] = []  # homes of the copies of the register one stage later
        for t in range(s + delays[k], s, -1):  # delayed copies, the last first
            readers = list(direct.get((k, t), []))
            readers += [(h, (_TAP, k, t + 1, c)) for c, h in enumerate(later)]
            later = assign(k, t, readers)
        if g.registered(k):
            taps = [(h, (_TAP, k, s + 1, c)) for c, h in enumerate(later)]
            assign(k, s, list(direct.get((k, s), [])) + taps)
    return plan
