"""compiler_opt-bcmax: BC-MAX training of LLVM's ML inliner for code size, MLGO-compatible."""

import os
import sys
import types

# Set before anything imports TensorFlow, which reads it once. At 2, TF 2.15 still prints three ERROR lines at import
# ("Unable to register cuDNN/cuFFT/cuBLAS factory": its CUDA plugins register twice), which change nothing on a CPU
# run. At 3 the console keeps only FATAL C++ lines; TensorFlow's real failures still raise Python exceptions.
# `TF_CPP_MIN_LOG_LEVEL=0 python -m ...` shows everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# TF-Agents imports Gym (this project uses none of it), and Gym prints a deprecation banner at import, taken from the
# `gym_notices` package's table. An empty table for this process keeps the banner off the console.
if "gym_notices.notices" not in sys.modules:
    _no_notices = types.ModuleType("gym_notices.notices", "No Gym banners (see compiler_opt/__init__.py).")
    _no_notices.notices = {}
    sys.modules["gym_notices.notices"] = _no_notices
