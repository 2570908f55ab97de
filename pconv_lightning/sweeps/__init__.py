"""``pconv sweep``: W&B sweep files run without a W&B server.

The open-source engine of W&B's sweep controller (the ``sweeps`` package, the ``[sweep]``
extra) proposes each point from the sweep YAML as it is (:mod:`.engine`); each point runs as
``wandb agent`` would run it, with ``WANDB_MODE=offline`` (:mod:`.runner`); its metric history is
read back from the point's offline W&B run file (:mod:`.wandb_runs`) and fed to the engine, and
everything is kept in one folder so a stopped sweep resumes (:mod:`.records`). :mod:`.summary`
writes the table and the plot. Nothing here is imported by ``pconv --help``.
"""
