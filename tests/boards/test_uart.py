"""The self-test's UART line, decoded from the simulated serial output."""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Module
from amaranth.sim import Simulator

from nnlcc.boards.selftest import SelfTest, selftest_vectors
from nnlcc.boards.uart import StatusReporter, UartTx, message_template
from nnlcc.ir.lowered import LoweredNetwork

DIV = 4  # clocks per bit: a real board uses clock/115200


def _receive(y_golden: np.ndarray | None, net: LoweredNetwork, x: np.ndarray, n_bytes: int) -> str:
    m = Module()
    m.submodules.st = st = SelfTest(net, x, y_golden)
    m.submodules.rep = rep = StatusReporter(st.done, st.passed, st.errors, st.n, DIV, period=50)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    got: list[int] = []

    async def bench(ctx: Any) -> None:
        while len(got) < n_bytes:
            await ctx.tick()
            if ctx.get(rep.tx) == 0:  # start bit: sample each bit in its middle
                await ctx.tick().repeat(DIV // 2)
                assert ctx.get(rep.tx) == 0
                byte = 0
                for i in range(8):
                    await ctx.tick().repeat(DIV)
                    byte |= ctx.get(rep.tx) << i
                await ctx.tick().repeat(DIV)
                assert ctx.get(rep.tx) == 1  # stop bit
                got.append(byte)

    sim.add_testbench(bench)
    sim.run()
    return bytes(got).decode("ascii")


def test_template_fields() -> None:
    t = message_template(64)
    text = "".join(chr(c) if isinstance(c, int) else "?" for c in t)
    assert text == "nnlcc selftest ???? 64 vectors errors=0x????\r\n"


def test_uart_reports_pass_then_repeats(tiny_net: LoweredNetwork) -> None:
    x = selftest_vectors(tiny_net, None, 12)
    line = "nnlcc selftest PASS 12 vectors errors=0x0000\r\n"
    assert _receive(None, tiny_net, x, 2 * len(line)) == 2 * line


def test_uart_reports_fail_with_error_count(tiny_net: LoweredNetwork) -> None:
    x = selftest_vectors(tiny_net, None, 12)
    y = tiny_net.evaluate(x).copy()
    y[[1, 4, 5], 0] ^= 1
    line = "nnlcc selftest FAIL 12 vectors errors=0x0003\r\n"
    assert _receive(y, tiny_net, x, len(line)) == line


def test_uart_divisor_validated() -> None:
    try:
        UartTx(0)
    except ValueError as e:
        assert "divisor" in str(e)
    else:
        raise AssertionError("divisor 0 accepted")
