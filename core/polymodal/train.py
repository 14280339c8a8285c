"""``torchrun -m polymodal.train SPEC.yaml [--out DIR] ...``: the training worker.

Takes the options of ``polymodal train`` (without the launcher's), or ``--command DOMAIN VERB
train ...`` for a scenario's train verb; under torchrun every process runs this, joins the
process group and trains its shard of each batch.
"""

from __future__ import annotations

import os
import sys

# What a collective raises on a surviving rank when another rank died (gloo and NCCL).
PEER_LOST = ("Connection reset by peer", "Connection closed by peer", "Broken pipe",
             "NCCL communicator was aborted", "Socket Timeout")


def main() -> None:
    from polymodal.cli.main import main as cli_main

    argv = sys.argv[1:]
    command = argv[1:] if argv[:1] == ["--command"] else ["train", *argv]
    try:
        cli_main(command)
    except RuntimeError as exc:  # DistBackendError included
        message = str(exc)
        if not any(sign in message for sign in PEER_LOST):
            raise
        # The launcher reports the run's failure in one line; this rank only says why it
        # stopped, without a traceback of the collective that found its peer gone.
        print(f"rank {os.environ.get('RANK', '?')} stopped: a peer process left the run "
              f"({message.strip().splitlines()[0][-120:]})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
