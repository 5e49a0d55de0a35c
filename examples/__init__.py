"""The shipped example models and their data, found through :mod:`importlib.resources` so
they work from a source checkout and from an installed wheel alike."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def example_path(name: str) -> Path:
    """Path of a shipped example file (``digits_mlp.onnx``, ``digits.npz``, ...)."""
    return Path(str(resources.files(__name__) / name))


#: nnlcc's default model: a 64-16-10 ReLU MLP trained on scikit-learn's 8x8 digits
MODEL = example_path("digits_mlp.onnx")
#: the streaming-hardware example (same test images as the MLP)
CNN = example_path("digits_cnn.onnx")
#: the train/test split both were trained and tested on
DATA = example_path("digits.npz")
#: the MLP after group-lasso fine-tuning
PRUNED_MODEL = example_path("digits_mlp_pruned.onnx")
#: the quantized jet-tagging example (16-64-32-32-5, Brevitas QAT, power-of-two scales), as
#: QONNX and as QCDQ, and its synthetic jet-like data (see jet_data.py, train_jet_mlp.py)
JET_QONNX = example_path("jet_mlp_qonnx.onnx")
JET_QDQ = example_path("jet_mlp_qdq.onnx")
JET_DATA = example_path("jet.npz")
#: the recurrent example: an LSTM reading each digit row by row (same test images)
LSTM = example_path("digits_lstm.onnx")
