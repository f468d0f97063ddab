"""Entry script for ``ray submit CLUSTER.yaml study/cluster/submit_study.py -- run CONFIG``.

``ray submit`` copies this file to the head node and runs it with the head's ``python``; the
arguments after ``--`` are an ``inr-study`` command line. Trials join the running cluster
(``--address auto`` is added to ``run`` and ``resume`` unless given).
"""

import sys

from study.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] in (["run"], ["resume"]) and "--address" not in argv:
        argv += ["--address", "auto"]
    sys.exit(main(argv))
