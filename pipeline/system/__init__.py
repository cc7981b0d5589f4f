"""Plumbing with no machine learning in it: atomic writes, NumPy files on disk, safe paths,
processes and their owners, memory, interrupts (Ctrl-C, SIGTERM) and the console.
Everything else may import from here; nothing here imports the rest of ``pipeline``.
"""
