"""The worker and replay processes run BLAS on one thread."""

from __future__ import annotations

import subprocess
import sys


def test_single_blas_thread_limits_every_blas_library_of_the_process() -> None:
    # In a child process: the limit is process-wide, and the test suite's own process keeps its threads.
    code = (
        "import numpy, threadpoolctl\n"
        "from streamwatch.runtime.threads import single_blas_thread\n"
        "single_blas_thread()\n"
        "blas = [p for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']\n"
        "assert blas, 'numpy has a BLAS'\n"
        "print(sorted({p['num_threads'] for p in blas}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[1]"
