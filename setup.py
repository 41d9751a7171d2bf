"""Builds optimizers._C: the fused CPU kernels, and the CUDA kernels where torch has CUDA.

Environment:
  OPTIMIZERS_CUDA=0         build without CUDA even where torch has it
  OPTIMIZERS_CPU_ARCH=...   value for -march (default "native": the kernels are
                            vectorized for the machine that builds them; set
                            e.g. "x86-64-v3" for a wheel that runs elsewhere)
  CUDA_HOME                 the CUDA toolkit (default: the one the nvcc on PATH
                            belongs to, as nvcc itself reports it)
  TORCH_CUDA_ARCH_LIST      GPU archs (default: the visible GPUs' if any, else
                            "8.0;9.0+PTX": A100 and H100/H200, and PTX that
                            newer GPUs compile when they load it)
"""

import glob
import os
import re
import shutil
import subprocess
import sys

import torch
from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CUDA_ARCHS = "8.0;9.0+PTX"


def _want_cuda() -> bool:
    return os.environ.get("OPTIMIZERS_CUDA", "1") != "0" and torch.version.cuda is not None


def _toolkit_of_nvcc() -> str | None:
    """The toolkit root of the nvcc on PATH. That nvcc may be a wrapper script outside the toolkit,
    where torch's guess (the folder above nvcc's) misses cuda_runtime.h; nvcc's dry run prints the
    root it runs from."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    try:
        dry_run = subprocess.run(
            [nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"^#\$ TOP=(.+)$", dry_run.stdout + dry_run.stderr, re.MULTILINE)
    return os.path.realpath(match.group(1).strip()) if match else None  # TOP is <root>/bin/..


def _configure_cuda() -> None:
    """Sets CUDA_HOME and TORCH_CUDA_ARCH_LIST where they are unset (before torch.utils.cpp_extension
    reads them), and says in one line what was chosen."""
    how_home = "from CUDA_HOME"
    if not os.environ.get("CUDA_HOME"):
        home = _toolkit_of_nvcc()
        if home is not None:
            os.environ["CUDA_HOME"] = home
            how_home = "from the nvcc on PATH"
    how_archs = "from TORCH_CUDA_ARCH_LIST"
    if not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        if torch.cuda.is_available():
            how_archs = "the visible GPUs'"
        else:  # torch's own detection raises IndexError without a GPU
            os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_CUDA_ARCHS
            how_archs = "the default, no GPU visible"
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST", "detected")
    print(
        f"optimizers: CUDA toolkit {os.environ.get('CUDA_HOME', 'not found')} ({how_home}); "
        f"archs {archs} ({how_archs})",
        file=sys.stderr,
    )


if _want_cuda():
    _configure_cuda()

# Imported after _configure_cuda: it reads CUDA_HOME when it is imported.
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402

# libmvec: the SIMD exp that the vectorized CPU loops call (diffGrad's sigmoid, csrc/rules.h).
LINK = ["-fopenmp", "-lmvec"]


def _extension():
    arch = os.environ.get("OPTIMIZERS_CPU_ARCH", "native")
    # -fno-math-errno and -fno-trapping-math let sqrt, division and selects
    # vectorize; results stay IEEE (no -ffast-math). 512-bit vectors where the
    # CPU has them: GCC prefers 256 bits on Intel, and a 16M Momentum loop took 3%
    # longer so on a Xeon with AVX-512.
    cxx = ["-O3", f"-march={arch}", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
    cxx += ["-mprefer-vector-width=512"]
    sources = sorted(glob.glob("csrc/*.cpp")) + sorted(glob.glob("csrc/cpu/*.cpp"))
    if _want_cuda() and CUDA_HOME is not None:
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
