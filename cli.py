"""``python cli.py ...``: the command line from a checkout (the README's commands use it).

Not installed: the installed package has the ``small-data`` command and ``python -m pipeline``;
all three run ``pipeline.cli.main``.
"""

from pipeline.cli import main

if __name__ == "__main__":
    main(prog_name="python cli.py")
