"""Photos in, checked and split datasets out: layouts, image checks, preparation, downloads,
tf.data input and augmentation. Import from the modules themselves (``pipeline.data.prepare`` ...).
"""
