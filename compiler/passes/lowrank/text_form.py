"""The IR text of a :class:`~nnlcc.passes.lowrank.code.LowRankCode`, which prints it
(:meth:`~nnlcc.passes.lowrank.code.LowRankCode.text_lines`); :func:`parse_code` reads it back
for the ``lowrank`` coder (:mod:`.coder`)::

    code lowrank shape=64x64 rank=8 target_db=40.41 reached_db=40.44 split=1
      shifts 2,2,3,3,3,3,4,4           (a_k: the second stage reads z_k * 2**a_k)
      options {"design": "...", ...}
      code lcc ...                     (V: rank x cols)
      code csd ...                     (U: rows x rank, split; rows x (rank + cols), joint)
      code lcc ...                     (E: rows x cols, split only)

The factors are the codes' own text, so the structure is the factor programs, never a dense
matrix; the implemented matrix is rebuilt from them.
"""

from __future__ import annotations

import json
import math

from nnlcc.ir.code_text import CodeReader
from nnlcc.ir.text_syntax import Line, child, fields, flag, ints, parse_shape, rest_of
from nnlcc.passes.lowrank.code import LowRankCode

__all__ = ["parse_code"]


def parse_code(line: Line, shape: tuple[int, int], reader: CodeReader) -> LowRankCode:
    pos, kv = fields(line, ("shape", "rank", "target_db", "reached_db", "split"))
    if pos[1:]:
        line.fail(f"unexpected {pos[1]!r}")
    with line.at():
        r, c = parse_shape(kv["shape"])
        rank, split = int(kv["rank"]), flag(kv["split"])
        target, reached = float(kv["target_db"]), float(kv["reached_db"])
    if (r, c) != shape:
        line.fail(f"lowrank shape {r}x{c} for a {shape[0]}x{shape[1]} matrix")
    if not 1 <= rank <= min(r, c):
        line.fail(f"lowrank rank {rank} is outside 1..{min(r, c)}")
    sh = child(line, 0, "shifts").leaf()
    with sh.at():
        shifts = ints(rest_of(sh))
        if len(shifts) != rank:
            raise ValueError(f"{len(shifts)} shifts for rank {rank}")
    opt = child(line, 1, "options").leaf()
    with opt.at():
        options = json.loads(rest_of(opt))
        if not isinstance(options, dict):
            raise ValueError("options must be a JSON object")
    want = 5 if split else 4
    if len(line.children) != want:
        line.fail(f"a lowrank code holds shifts, options and {want - 2} 'code' blocks")
    v_code = reader.code(child(line, 2, "code"), (rank, c))
    u_code = reader.code(child(line, 3, "code"), (r, rank) if split else (r, rank + c))
    e_code = reader.code(child(line, 4, "code"), (r, c)) if split else None
    return LowRankCode(
        shape=(r, c),
        rank=rank,
        shifts=shifts,
        v_code=v_code,
        u_code=u_code,
        target_db=target,
        reached_db=reached if not math.isnan(reached) else math.inf,
        e_code=e_code,
        options=options,
    )
