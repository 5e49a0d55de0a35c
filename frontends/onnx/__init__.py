"""Import a trained ONNX network (MLP, CNN or LSTM/GRU) into the matrix IR.

The importer (:mod:`.importer`) walks the nodes once, in the file's (topological) order, from
the one input to the one output, and hands every node on the data path to its op's handler in
the operator table (:mod:`.registry`).  The op modules fill that table, one family each:

* :mod:`.dense`: Gemm, MatMul; :mod:`.conv`: Conv; :mod:`.batchnorm`: BatchNormalization
  (folded into the layer before it, or a diagonal matrix layer);
* :mod:`.pool`: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool;
* :mod:`.residual`: Add (a residual connection, or the constant bias of the layer before);
* :mod:`.activation`: Relu (joins the layer before it);
* :mod:`.reshape`: Flatten, Reshape, Identity, Dropout;
* :mod:`.recurrent`: LSTM, GRU (and the Transpose, Gather, Squeeze around them);
* :mod:`.constants`: Constant, Shape and the ops folded on constants (Transpose, Cast, ...);
* :mod:`.quant` and :mod:`.quant_spec`: quantized models (QONNX Quant and BipolarQuant, ONNX
  QuantizeLinear, Clip, DequantizeLinear): their exact integers and formats as layer facts
  (:mod:`nnlcc.ir.imported`).

:func:`supported_ops` lists the table.  Anything else stops the import with one line naming
the node and the attribute, so a user sees at once which part of the model nnlcc cannot
compile yet.  :mod:`.read` loads and checks the file; :mod:`.reference` runs it in
onnxruntime.
"""

from __future__ import annotations

# The op modules register their handlers on import: importing them here makes the table
# complete whenever the frontend is imported, and nowhere else fills it.
from nnlcc.frontends.onnx import (  # noqa: F401
    activation,
    batchnorm,
    constants,
    conv,
    dense,
    pool,
    quant,
    quant_spec,
    recurrent,
    reshape,
    residual,
)
from nnlcc.frontends.onnx.importer import inspect_onnx, load_onnx
from nnlcc.frontends.onnx.reference import onnx_reference
from nnlcc.frontends.onnx.registry import supported_ops

__all__ = ["inspect_onnx", "load_onnx", "onnx_reference", "supported_ops"]
