"""compiler_opt-bcmax: BC-MAX training of LLVM's ML inliner for code size, MLGO-compatible."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines) hides our own logs; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
