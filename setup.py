"""Builds optimizers._C: the fused CPU kernels, and the CUDA kernels where torch has CUDA.

Environment:
  OPTIMIZERS_CUDA=0         build without CUDA even where torch has it
  OPTIMIZERS_CPU_ARCH=...   value for -march (default "native": the kernels are
                            vectorized for the machine that builds them; set
                            e.g. "x86-64-v3" for a wheel that runs elsewhere)
"""

import glob
import os

import torch
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def _want_cuda() -> bool:
    if os.environ.get("OPTIMIZERS_CUDA", "1") == "0":
        return False
    return torch.version.cuda is not None and torch.utils.cpp_extension.CUDA_HOME is not None


# libmvec: the SIMD exp that the CPU kernels call (see csrc/cpu/fused_cpu.cpp).
LINK = ["-fopenmp", "-lmvec"]


def _extension():
    arch = os.environ.get("OPTIMIZERS_CPU_ARCH", "native")
    # -fno-math-errno and -fno-trapping-math let sqrt, division and selects
    # vectorize; results stay IEEE (no -ffast-math).
    cxx = ["-O3", f"-march={arch}", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
    sources = sorted(glob.glob("csrc/*.cpp")) + sorted(glob.glob("csrc/cpu/*.cpp"))
    if _want_cuda():
        sources += sorted(glob.glob("csrc/cuda/*.cu")) + sorted(glob.glob("csrc/cuda/*.cpp"))
        return CUDAExtension(
            "optimizers._C",
            sources,
            define_macros=[("OPTIMIZERS_WITH_CUDA", None)],
            extra_compile_args={"cxx": cxx + ["-DOPTIMIZERS_WITH_CUDA"], "nvcc": ["-O3"]},
            extra_link_args=LINK,
        )
    return CppExtension("optimizers._C", sources, extra_compile_args={"cxx": cxx}, extra_link_args=LINK)


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
