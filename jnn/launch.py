"""``python -m jnn.launch -n 2 [--devices 2] [--timeout S] train.py [args...]``: run a script as several JAX
processes on this machine, like ``torchrun --nproc-per-node``; see :func:`jnn.distributed.launch`.

The script calls :func:`jnn.distributed.initialize` first; on a cluster the same script runs under the cluster's
own launcher (SLURM, Open MPI, Kubernetes), where ``initialize`` finds its arguments by itself.
"""

import sys

from jnn.distributed import main

if __name__ == "__main__":
    sys.exit(main())
