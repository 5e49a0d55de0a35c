"""The typed report row: report.json objects round-trip through it unchanged."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from nnlcc.errors import BadInputError
from nnlcc.report.layer_row import LayerRow

#: fc1 of the digits MLP as report.json has it (LCC summary facts included).
LCC_ROW: dict[str, Any] = {
    "name": "fc1", "kind": "dense", "shape": [16, 64], "pass": "lcc", "adders": 947,
    "const_adders": 15, "adders_per_weight": 0.9248, "depth": 18, "latency": 20,
    "in_fmt": "u8.7", "out_fmt": "u8.4", "out_bits": 8, "max_bits": 27, "adder_bits": 16537,
    "est_luts": 16631, "est_ffs": 22643, "weight_sqnr_db": 45.1, "relu": True, "csd_baseline_adders": 1486, "kept_columns": 64,
    "shared_columns": 64, "pre_adders": 0, "algo": "fp", "target_sqnr_db": 45.0,
    "sqnr_db": 45.098, "target_reached": True, "slices": 3, "factors_mean": 24.33,
}  # fmt: skip
#: pool1 of the digits CNN: no matrix facts, window facts of the streaming hardware.
POOL_ROW: dict[str, Any] = {
    "name": "pool1", "kind": "pool", "shape": [4, 16], "pass": "max", "adders": 24,
    "const_adders": 0, "adders_per_weight": None, "depth": 4, "latency": 7, "in_fmt": "u8.4",
    "out_fmt": "u8.4", "out_bits": 8, "max_bits": 10, "adder_bits": 224, "est_luts": 190, "est_ffs": 236, "kernel": [2, 2],
    "stride": [2, 2], "line_buffer_bits": 288, "window_delay": 9,
}  # fmt: skip


@pytest.mark.parametrize("obj", [LCC_ROW, POOL_ROW], ids=["dense", "pool"])
def test_json_round_trips_with_key_order(obj: dict[str, Any]) -> None:
    row = LayerRow.from_json(obj)
    assert json.dumps(row.to_json()) == json.dumps(obj)  # same keys, order and values
    assert LayerRow.from_json(json.loads(json.dumps(row.to_json()))) == row


def test_fields_are_typed_and_extras_hold_the_pass_facts() -> None:
    row = LayerRow.from_json(LCC_ROW)
    assert row.pass_name == "lcc" and row.shape == (16, 64) and row.kept_columns == 64
    assert row.extras == {
        "algo": "fp", "target_sqnr_db": 45.0, "sqnr_db": 45.098, "target_reached": True,
        "slices": 3, "factors_mean": 24.33,
    }  # fmt: skip
    pool = LayerRow.from_json(POOL_ROW)
    assert pool.kernel == (2, 2) and pool.weight_sqnr_db is None and pool.extras == {}
    assert "weight_sqnr_db" not in pool.to_json() and "relu" not in pool.to_json()
    assert pool.to_json()["adders_per_weight"] is None  # always written, null when unknown


def test_extras_go_between_the_compression_and_the_window_facts() -> None:
    row = LayerRow.from_json({**POOL_ROW, "kept_columns": 9, "note": "x"})
    keys = list(row.to_json())
    assert keys.index("kept_columns") < keys.index("note") < keys.index("kernel")


def test_extras_may_not_shadow_a_field_and_must_be_scalars() -> None:
    row = LayerRow.from_json(POOL_ROW)
    with pytest.raises(ValueError, match="shadow"):
        LayerRow(**{**row.__dict__, "extras": {"adders": 3}})
    numpy_facts = LayerRow.from_json({**POOL_ROW, "n": np.int64(3), "ok": np.bool_(True)})
    assert numpy_facts.extras == {"n": 3, "ok": True}
    assert type(numpy_facts.extras["n"]) is int and type(numpy_facts.extras["ok"]) is bool
    with pytest.raises(BadInputError, match="not a JSON scalar"):
        LayerRow.from_json({**POOL_ROW, "odd": {"a": 1}})


def test_a_row_without_its_required_keys_is_refused() -> None:
    obj = {k: v for k, v in POOL_ROW.items() if k != "out_bits"}
    with pytest.raises(BadInputError, match="lacks out_bits"):
        LayerRow.from_json(obj)


def test_the_compile_steps_facts_are_typed_and_follow_the_code_facts() -> None:
    facts = {"auto_coder": "csd{weight_bits=9}", "auto_sqnr_db": 45.0,
             "auto_runners_up": "lcc 12 LUTs", "csd_best": "csd{weight_bits=9}",
             "csd_best_adders": 908, "csd_best_luts": 9507}  # fmt: skip
    row = LayerRow.from_json({**LCC_ROW, **facts})
    assert row.auto_coder == "csd{weight_bits=9}" and row.csd_best_luts == 9507
    assert "auto_coder" not in row.extras
    keys = list(row.to_json())
    assert keys.index("factors_mean") < keys.index("auto_coder") < keys.index("csd_best_luts")
    assert json.dumps(row.to_json()) == json.dumps({**LCC_ROW, **facts})
