"""The command line, one module per group of commands; ``pipeline.cli`` puts them together.

``base``: the command and group classes (titled help sections, examples, one-line errors);
``options``: the shared option groups, their defaults read from the configs; ``choices``: the
registries' names without TensorFlow; ``training``, ``evaluation``, ``chapter``, ``data``,
``tools``: the commands. Click code only: the library never imports from here.
"""
