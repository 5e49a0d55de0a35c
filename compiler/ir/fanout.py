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
* through an SHR node (wiring) read at its own stage, each reader of the SHR and the first
  delayed copy of the SHR: the shifted wire is the same net.

A register with ``r > bound`` readers gets ``ceil(r / bound)`` copies. Its readers, sorted by
the first graph output each one feeds (readers of the same output tree are placed together)
and then by id, are cut into that many contiguous groups of (nearly) equal size: copy ``c``
drives group ``c``. Copies are planned from each node's last delayed copy back to the node
itself, since the copies of a later stage are readers of the stage before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from nnlcc.ir.ops import SELECT_OPS, Node, Op

__all__ = ["RegisterCopies", "ScheduledGraph", "plan_copies"]


class ScheduledGraph(Protocol):
    """What the plan reads of a scheduled graph (an :class:`~nnlcc.ir.adder_graph.AdderGraph`)."""

    @property
    def nodes(self) -> Sequence[Node]: ...
    @property
    def outputs(self) -> Sequence[int]: ...
    @property
    def reads(self) -> Sequence[int]: ...
    @property
    def latency(self) -> int: ...
    def schedule(self) -> list[int]: ...
    def delays(self) -> list[int]: ...
    def registered(self, node_id: int) -> bool: ...


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
    A read through an SHR node at its own stage names the copy of the SHR's root register.
    ``separate``: delayed copies of an SHR node whose root's register at the same stage is
    duplicated: their bits are bits of the root's copies, which a synthesizer would merge them
    into (adding their readers to one copy), so they are kept apart like the copies."""

    bound: int = 0
    copies: dict[tuple[int, int], int] = field(default_factory=dict)
    operand: dict[tuple[int, int], int] = field(default_factory=dict)
    tap: dict[tuple[int, int, int], int] = field(default_factory=dict)
    output: dict[int, int] = field(default_factory=dict)
    separate: set[tuple[int, int]] = field(default_factory=set)
    _nodes: frozenset[int] | None = field(default=None, repr=False, compare=False)

    def count(self, node: int, stage: int) -> int:
        """Copies of the register of ``node`` at ``stage`` (1 when not duplicated)."""
        return self.copies.get((node, stage), 1)

    def kept(self, node: int, stage: int) -> bool:
        """Whether synthesis must keep the register of ``node`` at ``stage`` as it is (a copy
        of a duplicated register, or one of :attr:`separate`)."""
        return (node, stage) in self.copies or (node, stage) in self.separate

    def duplicated(self, node: int) -> bool:
        """Whether any register of ``node`` (its own or a delayed copy) is duplicated or kept
        separate."""
        if self._nodes is None:
            self._nodes = frozenset(k for k, _ in self.copies) | {k for k, _ in self.separate}
        return node in self._nodes

    @property
    def extra_registers(self) -> list[tuple[int, int, int]]:
        """``(node, stage, extra copies)`` of every duplicated register."""
        return [(k, t, n - 1) for (k, t), n in sorted(self.copies.items())]


def _homes(g: ScheduledGraph) -> list[int]:
    """The first graph output each node feeds (``len(outputs)`` if none): readers with the
    same home belong to the same output tree."""
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


def plan_copies(g: ScheduledGraph, bound: int) -> RegisterCopies:
    """The register copies of ``g``'s schedule for at most ``bound`` readers per register
    (``bound`` 0: none)."""
    plan = RegisterCopies(bound=bound)
    if bound <= 0:
        return plan
    st, rd = g.schedule(), g.reads
    delays = g.delays()
    lat = g.latency
    nodes = g.nodes
    home = _homes(g)

    # the root register of an SHR read at its own stage: its operand's, down the SHR chain
    root = list(range(len(nodes)))
    for i, n in enumerate(nodes):
        if n.op is Op.SHR:
            root[i] = root[n.a]

    # direct readers of every value (node, stage), SHR reads at their stage moved to the root
    direct: dict[tuple[int, int], list[tuple[int, _Reader]]] = {}

    def read(o: int, t: int, who: _Reader, h: int) -> None:
        if nodes[o].op is Op.CONST:
            return
        key = (root[o], t) if t == st[o] else (o, t)
        direct.setdefault(key, []).append((h, who))

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

    # homes of the copies of each node's first delayed register, for its root's stage
    first_taps: dict[int, list[tuple[int, _Reader]]] = {}
    for k in range(len(nodes) - 1, -1, -1):
        n = nodes[k]
        if n.op is Op.CONST:
            continue
        s = st[k]
        later: list[int] = []  # homes of the copies of the register one stage later
        for t in range(s + delays[k], s, -1):  # delayed copies, the last first
            readers = list(direct.get((k, t), []))
            readers += [(h, (_TAP, k, t + 1, c)) for c, h in enumerate(later)]
            later = assign(k, t, readers)
        taps = [(h, (_TAP, k, s + 1, c)) for c, h in enumerate(later)]
        if n.op is Op.SHR:  # its wire is its root's net: the root's stage counts its copies
            first_taps.setdefault(root[k], []).extend(taps)
            continue
        if g.registered(k):
            assign(k, s, list(direct.get((k, s), [])) + taps + first_taps.pop(k, []))
    for k, n in enumerate(nodes):  # an SHR's delay line beside a duplicated one of its root
        if n.op is Op.SHR:
            for t in range(st[k] + 1, st[k] + delays[k] + 1):
                if plan.count(root[k], t) > 1 and (k, t) not in plan.copies:
                    plan.separate.add((k, t))
    return plan
