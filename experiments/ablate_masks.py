"""The mask-generator ablation as a script: same arguments as ``pconv ablate``.

See :mod:`pconv_lightning.evaluation.ablation` for what it runs and writes. Example (2 seeds per
generator, a tiny CPU budget on the shipped samples)::

    .venv/bin/python experiments/ablate_masks.py \\
        experiments/configs/masks_shapes.yaml experiments/configs/masks_boxes.yaml \\
        --base experiments/configs/quickstart.yaml --seeds 2 --images-per-run 80 \\
        --batch-size 4 --images data/samples/val --masks data/samples/eval_masks --size 128 \\
        --out outputs/ablation -- --trainer.logger=false
"""

import sys

from pconv_lightning.evaluation.ablation import main

if __name__ == "__main__":
    sys.exit(main())
