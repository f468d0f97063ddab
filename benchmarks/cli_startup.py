"""Start-up time of the command line: wall seconds of whole ``inr-study`` processes that only
print help (median of 5 runs each; the first run warms the file cache and is not counted).

    python benchmarks/cli_startup.py
"""

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (["--help"], ["decode", "--help"], ["run", "--help"], ["encode", "--help"])


def seconds(argv: list[str], repeats: int = 5) -> float:
    # The command installed beside this interpreter (the project's .venv), else the one on PATH.
    beside = Path(sys.executable).parent / "inr-study"
    executable = str(beside) if beside.exists() else shutil.which("inr-study")
    if executable is None:
        sys.exit("inr-study is not installed (make setup)")
    subprocess.run([executable, *argv], capture_output=True, check=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([executable, *argv], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    for argv in COMMANDS:
        print(f"inr-study {' '.join(argv):<16} {seconds(argv):6.2f} s")


if __name__ == "__main__":
    main()
