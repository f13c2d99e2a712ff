"""``python -m training ...`` = ``wcviz train ...``; torchrun starts one per process:

    torchrun --nproc-per-node 4 -m training --preset imagenet-resnet50 --method wc
"""

import os
import sys

from training.cli import train_main
from wcviz.errors import WcvizError


def main() -> int:
    try:
        return train_main(sys.argv[1:], prog="python -m training")
    except WcvizError as err:
        if int(os.environ.get("RANK", "0")) == 0:  # one line, not one per process
            print(f"wcviz train: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
