"""The intermediate representations and the rules they obey.

- :mod:`.matrix`: the matrix IR (:class:`MatrixGraph` of dense, conv, pool, add and flatten
  layers with fixed-point formats and an attached :class:`MatrixCode` per matrix layer);
- :mod:`.text`: its text form, printed and parsed back;
- :mod:`.fixed_point`: every fixed-point rule (formats, rounding, saturation, requantization);
- :mod:`.csd`: canonical signed digit arithmetic;
- :mod:`.adder_graph`: the SSA shift-add program whose numpy execution is the golden model;
- :mod:`.lower` and :mod:`.lowered`: a matrix graph lowered to one adder graph per layer;
- :mod:`.window`: sliding-window geometry of conv and pool layers.
"""
