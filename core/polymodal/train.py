"""``torchrun -m polymodal.train SPEC.yaml [--out DIR] ...``: the training worker.

Takes the options of ``polymodal train`` (without the launcher's); under torchrun every
process runs this, joins the process group and trains its shard of each batch.
"""

from __future__ import annotations

import sys


def main() -> None:
    from polymodal.cli.main import main as cli_main

    cli_main(["train", *sys.argv[1:]])


if __name__ == "__main__":
    main()
