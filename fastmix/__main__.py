"""``python -m fastmix``: the same command line as the ``fastmix`` script."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
