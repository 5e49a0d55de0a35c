"""nnlcc.hdl"""
