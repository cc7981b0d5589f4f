"""Where training runs: the strategy names (``strategies``, light, no TensorFlow) and their
TensorFlow implementation (``distribute``: one device, mirrored replicas, multi-worker).
"""
