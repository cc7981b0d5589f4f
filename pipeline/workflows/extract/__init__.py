"""Feature extraction: ``config`` (``ExtractConfig``, light), ``workflow.run_extract`` (the
dispatcher), its three ways (``features``, ``views``, ``images``) and what they share
(``common``). Import from the modules themselves; this package imports nothing, so reading
the config loads no TensorFlow.
"""
