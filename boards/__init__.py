"""nnlcc.boards"""
