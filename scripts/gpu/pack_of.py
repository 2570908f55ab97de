"""Print the photo pack that ``pconv fit`` with these configs trains on: ``data.init_args.train``
of the last config that sets it (later configs override earlier ones, as LightningCLI merges
them). scripts/gpu/prepare.sh builds that pack; bench.sh and the mixed-precision proof read it.

    python3 scripts/gpu/pack_of.py experiments/configs/reference_256.yaml [ON_TOP.yaml ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def pack_of(configs: list[str]) -> str:
    """The pack of the last config in ``configs`` naming ``data.init_args.train``."""
    pack = None
    for config in configs:
        data = (yaml.safe_load(Path(config).read_text()) or {}).get("data") or {}
        pack = (data.get("init_args") or {}).get("train", pack)
    if pack is None:
        raise ValueError(f"none of {configs} sets data.init_args.train (the photo pack)")
    return pack


if __name__ == "__main__":
    try:
        print(pack_of(sys.argv[1:]))
    except (OSError, ValueError) as err:
        sys.exit(f"error: {err}")
