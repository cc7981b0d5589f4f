"""``python -m pipeline ...``: the command line of the installed package (as ``small-data``)."""

from pipeline.cli import main

if __name__ == "__main__":
    main(prog_name="python -m pipeline")
