"""``python -m wcviz.training ...`` = ``wcviz train ...``; torchrun starts one per process:

    torchrun --nproc-per-node 4 -m wcviz.training --preset imagenet-resnet50 --method wc
"""

import os
import sys

from wcviz.training.cli import train_main
from wcviz.errors import WcvizError


def main() -> int:
    try:
        return train_main(sys.argv[1:], prog="python -m wcviz.training")
    except WcvizError as err:
        if int(os.environ.get("RANK", "0")) == 0:  # one line, not one per process
            print(f"wcviz train: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _end_worker(code: int) -> None:
    """End a DDP worker as :mod:`multiprocessing` ends its children: ``os._exit`` after
    flushing, without interpreter finalization. By then its run is written (rank 0 finished
    the store before the end-of-run barrier) and its process group left; finalization would
    only tear down native thread pools (gloo's; pyarrow's where something imported it), and
    that teardown is a known way for a finished process to abort with SIGABRT ('terminate
    called without an active exception'), as a torchrun worker did in CI."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    status = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _end_worker(status)
    sys.exit(status)
