"""``python -m pconv_lightning ...`` is the ``pconv`` command."""

from pconv_lightning.cli import main

if __name__ == "__main__":
    main()
