"""Configs shipped with the package: ``base.yaml``, which every ``pconv fit|validate|test|predict``
loads first (read through :mod:`importlib.resources`, so an installed package finds it too).
The experiment files that override it live in the repository's ``experiments/configs/``."""
