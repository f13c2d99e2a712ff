"""The compiled part of wcviz: the fused float32 passes of wcviz.record.stats.

Everything else about the package is in pyproject.toml. The extension is optional: where it
cannot be compiled (no C compiler), the install still succeeds and the statistics take their
numpy path, with the same results (wcviz.record.native).
"""
import sys

from setuptools import Extension, setup

# -O3 vectorises the 8-lane sums; no -ffast-math: the float64 additions must keep numpy's order.
FLAGS = [] if sys.platform == "win32" else ["-O3", "-ffp-contract=off"]

setup(ext_modules=[Extension("wcviz.record._kernels", ["wcviz/record/_kernels.c"],
                             extra_compile_args=FLAGS, optional=True)])
