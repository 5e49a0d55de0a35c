"""The report's accuracy section: the float network against the golden integer model."""

from __future__ import annotations

import numpy as np

from nnlcc.data import Dataset
from nnlcc.frontends.onnx import onnx_reference
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.imported import ImportedQuant
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.report.schema import Accuracy


def accuracy_report(graph: MatrixGraph, net: LoweredNetwork, data: Dataset) -> Accuracy:
    """Float network vs golden integer model on the test inputs."""
    x = data.x_test
    y_float = onnx_reference(graph.source, x) if graph.source else graph.forward_float(x)
    y_float = np.asarray(y_float, dtype=np.float64).reshape(len(x), -1)
    q = net.evaluate(net.quantize_input(x))
    y_gold = net.output_real(q)
    out = Accuracy(
        dataset=data.name,
        samples=len(x),
        sqnr_db=round(sqnr_db(y_float, y_gold), 2),
        argmax_agreement=round(float(np.mean(y_float.argmax(1) == y_gold.argmax(1))), 4),
    )
    if any(ImportedQuant in layer.notes for layer in graph.layers):
        # an imported quantized model: the share of outputs equal to the model's own (float32)
        # arithmetic, 1.0 wherever it is integer-exact
        same = y_gold.astype(np.float32) == y_float.astype(np.float32)
        out.reference_identical = round(float(np.mean(same)), 6)
    if data.y_test is not None:
        out.float_accuracy = round(float(np.mean(y_float.argmax(1) == data.y_test)), 4)
        out.golden = round(float(np.mean(y_gold.argmax(1) == data.y_test)), 4)
    return out
