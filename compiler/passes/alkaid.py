"""alkaid (da4ml's successor) as a matrix code: its constant-matrix-vector solution rebuilt as
shift-adds of nnlcc's adder graph, so an ``alkaid`` layer is lowered, costed, emitted and
checked bit-exactly like every other code.

The weights are quantized like CSD's (``bits`` signed bits, one power-of-two scale per layer)
and ``alkaid.cmvm.cmvm_solve`` gets the integer kernel ``W_int.T`` (inputs x outputs: alkaid
computes ``y = x @ kernel``) with every input's range ``(lo, hi, 1)``: integers, as the layer's
input format holds them.  The range only steers alkaid's own adder-width cost; the program is
exact for any integer input.  Its answer is a cascade of two programs (the second reads the
first's outputs); each keeps only what nnlcc needs:

* opcode ``-1``: input ``data[0]``, times ``2**inp_shifts[data[0]]``;
* opcode ``0`` / ``1``: ``buf[a] ± buf[b] * 2**data[0]`` (one adder; these are the additions);
* opcode ``-2``: ``-buf[a]`` (a sign, wiring);
* outputs: ``buf[out_idx] * 2**out_shift``, negated by ``out_neg`` (``out_idx < 0``: zero).

Any other opcode (alkaid emits none for a plain matrix) makes the code refuse to build, with
the opcode named.  :meth:`AlkaidCode.build` runs the rebuilt program on the unit vectors in
exact integer arithmetic and refuses a program that does not give ``W_int`` back.

Its room: :class:`AlkaidCode` and :class:`AlkaidCoder` (reads the IR text back; offers
``auto`` alkaid's solution at the CSD weight bits, when alkaid is installed and the layer has
at most ``peer_entries`` weights).  The IR text is ``code alkaid frac=F`` with ``weights`` (the
integers, one row per line) and one ``stage ops= inputs= outputs=`` per program of the
cascade: ``ops`` rows ``opcode a b data``, ``inp_shifts`` and ``out`` (three rows: index,
shift, negation of each output).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.code_text import CodeReader, CodeWriter
from nnlcc.ir.fixed_point import quantize_weights
from nnlcc.ir.matrix import FloatArray, MatrixLayer, Term
from nnlcc.ir.text_syntax import Line, child, fields, keyword, matrix_lines, parse_matrix
from nnlcc.passes.coder import Coder, CoderContext, Design
from nnlcc.passes.csd import WeightWidth
from nnlcc.passes.shift_add import SignedTerm, build_terms_sum

IntArray = npt.NDArray[np.int64]

#: The opcodes a rebuilt stage may hold (see the module docstring).
INPUT, ADD, SUB, NEG = -1, 0, 1, -2


def available() -> bool:
    """Whether alkaid is installed (the ``bench`` extra)."""
    return importlib.util.find_spec("alkaid") is not None


@dataclass
class AlkaidStage:
    """One program of alkaid's cascade: ``ops`` rows ``(opcode, a, b, data)``."""

    ops: IntArray
    inp_shifts: IntArray
    out_idx: IntArray
    out_shift: IntArray
    out_neg: npt.NDArray[np.bool_]

    @property
    def adders(self) -> int:
        return int(np.count_nonzero((self.ops[:, 0] == ADD) | (self.ops[:, 0] == SUB)))

    @classmethod
    def from_comb(cls, comb: Any) -> AlkaidStage:
        rows: list[tuple[int, int, int, int]] = []
        for op in comb.ops:
            code = int(op.opcode)
            addr = tuple(int(a) for a in op.addr)
            if code == INPUT:
                rows.append((INPUT, -1, -1, int(op.data[0])))
            elif code in (ADD, SUB):
                rows.append((code, addr[0], addr[1], int(op.data[0])))
            elif code == NEG:
                rows.append((NEG, addr[0], -1, 0))
            else:
                raise BadInputError(f"alkaid: opcode {code} is not a shift-add")
        return cls(
            ops=np.array(rows, dtype=np.int64).reshape(-1, 4),
            inp_shifts=np.array(comb.inp_shifts, dtype=np.int64),
            out_idx=np.array(comb.out_idxs, dtype=np.int64),
            out_shift=np.array(comb.out_shifts, dtype=np.int64),
            out_neg=np.array(comb.out_negs, dtype=np.bool_),
        )

    def lower(self, graph: AdderGraph, inputs: list[SignedTerm | None]) -> list[SignedTerm | None]:
        """The stage on signed shifted terms (``None``: a zero value)."""
        buf: list[SignedTerm | None] = []
        for code, a, b, data in self.ops.tolist():
            if code == INPUT:
                t = inputs[data]
                s = int(self.inp_shifts[data])
                buf.append(None if t is None else (t[0], t[1] + s, t[2]))
            elif code == NEG:
                t = buf[a]
                buf.append(None if t is None else (t[0], t[1], not t[2]))
            else:
                x, y = buf[a], buf[b]
                if y is not None:
                    y = (y[0], y[1] + data, y[2] != (code == SUB))
                if x is None or y is None:
                    buf.append(x if y is None else y)
                else:
                    buf.append(_add(graph, x, y))
        out: list[SignedTerm | None] = []
        for idx, sh, neg in zip(self.out_idx, self.out_shift, self.out_neg, strict=True):
            t = buf[int(idx)] if idx >= 0 else None
            out.append(None if t is None else (t[0], t[1] + int(sh), t[2] != bool(neg)))
        return out


def _add(graph: AdderGraph, x: SignedTerm, y: SignedTerm) -> SignedTerm:
    (term,) = build_terms_sum(graph, [[x, y]], cse=False)
    assert term.node is not None
    return term.node, term.exp, term.neg


@dataclass
class AlkaidCode:
    """A layer's weights as ``bits``-bit integers (scale ``2**-frac``) computed by alkaid's
    solution, rebuilt as shift-adds (``stages``: its cascade, first to last)."""

    w_int: IntArray
    frac: int
    stages: list[AlkaidStage]
    name: str = "alkaid"

    @classmethod
    def build(cls, weight: FloatArray, bits: int, in_range: tuple[int, int]) -> AlkaidCode:
        """Solve ``weight`` at ``bits`` bits with alkaid's default (strongest) settings."""
        w_int, frac = quantize_weights(weight, bits)
        return cls.from_ints(w_int, frac, in_range)

    @classmethod
    def from_ints(cls, w_int: IntArray, frac: int, in_range: tuple[int, int]) -> AlkaidCode:
        """Solve the integer matrix ``w_int`` (scale ``2**-frac``), e.g. an imported model's."""
        from alkaid.cmvm import cmvm_solve

        cols = w_int.shape[1]
        if not np.any(w_int):
            return cls(w_int=w_int, frac=frac, stages=[])
        kernel = np.ascontiguousarray(w_int.T, dtype=np.float32)
        lo, hi = in_range
        combs = cmvm_solve(kernel, qintervals=[(float(lo), float(hi), 1.0)] * cols)
        code = cls(w_int=w_int, frac=frac, stages=[AlkaidStage.from_comb(c) for c in combs])
        code.check()
        return code

    def check(self) -> None:
        """Lower the rebuilt program and run it on the unit vectors (the adder graph's exact
        integer arithmetic); it must give ``w_int`` back."""
        rows, cols = self.w_int.shape
        graph = AdderGraph.with_inputs([(-1, 1)] * cols)
        terms = self.lower(graph, list(range(cols)))
        live = [t for t in terms if t.node is not None]
        graph.outputs = [t.node for t in live if t.node is not None]
        vals = graph.evaluate(np.eye(cols, dtype=np.int64)).T if live else np.zeros((0, cols))
        got = np.zeros((rows, cols), dtype=object)
        k = 0
        for r, t in enumerate(terms):
            if t.node is None:
                continue
            e = t.exp + self.frac
            v = [int(x) for x in vals[k]]
            k += 1
            if e < 0 and any(x % (1 << -e) for x in v):
                raise BadInputError("alkaid: its solution does not compute the quantized matrix")
            got[r] = [(-1 if t.neg else 1) * (x << e if e >= 0 else x >> -e) for x in v]
        if not np.array_equal(got.astype(np.int64), self.w_int):
            raise BadInputError("alkaid: its solution does not compute the quantized matrix")

    def implemented(self) -> FloatArray:
        return self.w_int.astype(np.float64) * 2.0**-self.frac

    def lower(self, graph: AdderGraph, inputs: list[int]) -> list[Term]:
        rows, _ = self.w_int.shape
        if not self.stages:
            return [Term(None, 0) for _ in range(rows)]
        terms: list[SignedTerm | None] = [(i, 0, False) for i in inputs]
        for stage in self.stages:
            terms = stage.lower(graph, terms)
        return [Term(None, 0) if t is None else Term(t[0], t[1] - self.frac, t[2]) for t in terms]

    @property
    def adders(self) -> int:
        return sum(s.adders for s in self.stages)

    def summary(self) -> dict[str, Any]:
        return {
            "weight_frac_bits": self.frac,
            "adders": self.adders,
            "alkaid_stages": len(self.stages),
        }

    def text_lines(self, ind: str, out: CodeWriter) -> list[str]:
        lines = [f"{ind}code alkaid frac={self.frac}", f"{ind}  weights"]
        lines += matrix_lines(self.w_int, ind + "    ")
        for s in self.stages:
            outs = np.stack([s.out_idx, s.out_shift, s.out_neg.astype(np.int64)])
            lines += [
                f"{ind}  stage ops={len(s.ops)} inputs={len(s.inp_shifts)} outputs={outs.shape[1]}",
                f"{ind}    ops",
                *matrix_lines(s.ops, ind + "      "),
                f"{ind}    inp_shifts",
                *matrix_lines(s.inp_shifts[None, :], ind + "      "),
                f"{ind}    out",
                *matrix_lines(outs, ind + "      "),
            ]
        return lines


class AlkaidCoder(Coder):
    """alkaid's room in the registry: its IR text, and for ``auto`` alkaid's solution at the
    CSD weight bits (when installed, on layers of at most ``peer_entries`` weights)."""

    kind: ClassVar[str] = "alkaid"
    in_auto: ClassVar[bool] = True

    def parse(self, line: Line, shape: tuple[int, int], reader: CodeReader) -> AlkaidCode:
        _, kv = fields(line, ("frac",))
        with line.at():
            frac = int(kv["frac"])
        w_int = parse_matrix(child(line, 0, "weights"), shape, int, np.int64)
        stages = []
        for st in line.children[1:]:
            if keyword(st) != "stage":
                st.fail(f"expected 'stage', got '{keyword(st)}'")
            _, skv = fields(st, ("ops", "inputs", "outputs"))
            with st.at():
                n, i, o = int(skv["ops"]), int(skv["inputs"]), int(skv["outputs"])
            ops = parse_matrix(child(st, 0, "ops"), (n, 4), int, np.int64)
            shifts = parse_matrix(child(st, 1, "inp_shifts"), (1, i), int, np.int64)[0]
            out = parse_matrix(child(st, 2, "out"), (3, o), int, np.int64)
            stages.append(AlkaidStage(ops, shifts, out[0], out[1], out[2].astype(np.bool_)))
        code = AlkaidCode(w_int=w_int, frac=frac, stages=stages)
        with line.at():
            code.check()  # the program must still compute the weights
        return code

    def candidates(self, layer: MatrixLayer, ctx: CoderContext) -> list[Design]:
        if not ctx.priced or layer.weight.size > ctx.peer_entries or not available():
            return []
        fmt = layer.in_fmt
        span = (fmt.lo, fmt.hi) if fmt is not None else (-128, 127)
        if ctx.exact is not None:  # an imported model's integers, kept
            w_int, frac = ctx.exact
            return [Design("alkaid{imported}", lambda m: AlkaidCode.from_ints(w_int, frac, span))]
        width = WeightWidth.of(ctx)
        return [Design(f"alkaid{width.label}", lambda m: AlkaidCode.build(m, width.need(), span))]
