"""Compiled Cython kernels. Only :mod:`skdl._ops` imports from here."""
