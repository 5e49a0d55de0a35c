"""nnlcc.frontends"""
