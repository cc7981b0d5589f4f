"""Averaging trained runs into one model: ``config`` (``EnsembleConfig``, light) and
``workflow.build_ensemble``. Import from the modules themselves; this package imports
nothing, so reading the config loads no TensorFlow.
"""
