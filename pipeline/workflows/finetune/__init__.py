"""Fine-tuning an extraction run: ``config`` (``FinetuneConfig``, light), ``source`` (the
extract run it starts from), ``workflow.run_finetune`` (unfreeze the top of the base), on
cached features of the frozen part (``cached_top``) or on images. Import from the modules
themselves; this package imports nothing, so reading the config loads no TensorFlow.
"""
