"""One package per workflow, each with its light config (``config``: every default, no
TensorFlow), its entry point (``workflow``) and its sub-paths below it: ``scratch``,
``extract``, ``finetune``, ``chapter`` (the whole chapter, ``run``); beside them ``lr_find``
and ``data_check``. Sub-paths import downward only: config, then common parts, then the
dispatcher.
"""
