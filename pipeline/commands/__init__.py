"""The command line's option groups and command groups; ``cli.py`` puts them together.

Click code only: the library never imports from here.
"""
