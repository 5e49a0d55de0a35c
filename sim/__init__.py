"""nnlcc.sim"""
