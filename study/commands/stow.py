"""Keep a published study's committed files in git history only, out of the working tree.

Each OUT/bitstreams/KEY.bin must be committed byte for byte as it is; stow removes it from the
tree and lists it (blob, size, SHA-256) in OUT/bitstreams-history.json, staged for the next
commit. From then on `rebuild` and `import` read the files from history (a clone needs that
history: not `--depth 1`) and `export` leaves them there. For studies whose files would overfill
the tree a lent GPU machine is sent.
"""

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study stow", description=__doc__)
    parser.add_argument("published", type=Path, help="a committed published study, results/NAME")
    args = parser.parse_args(argv)

    from study.engine.history import stow
    from study.engine.incoming import MAX_BITSTREAM_BYTES

    done = stow(args.published, MAX_BITSTREAM_BYTES)
    if not done.files:
        print(f"{args.published}: no files in the working tree to stow ({done.kept} in history)")
        return 0
    print(
        f"{args.published}: {done.files} files ({done.bytes / 2**20:.1f} MiB) out of the working "
        f"tree, {done.kept} kept in git history; commit the change (git commit)"
    )
    return 0
