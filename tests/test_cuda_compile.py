"""The CUDA sources build without a GPU: every csrc/cuda/*.cu compiles with plain nvcc for sm_80 and
sm_90 (no torch headers, none of torch's relaxed-constexpr flags), the launcher's packing and the
kernels themselves pass host-run tests (tests/cuda/), and the ATen glue passes a syntax check where
torch's headers allow one. Skipped where nvcc (or g++) is not on PATH."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.optim_db import OPTIM_DB

ROOT = Path(__file__).resolve().parent.parent
CUDA_SRC = ROOT / "csrc" / "cuda"
KERNEL_FILES = sorted(CUDA_SRC.glob("*.cu"))
NVCC = shutil.which("nvcc")
GXX = shutil.which("g++")

ARCHS = ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90"]
# The defines torch's extension build passes to nvcc: the kernels must not rely on the implicit
# half/bfloat16 conversions and operators that they remove.
TORCH_DEFINES = [
    "-D__CUDA_NO_HALF_OPERATORS__",
    "-D__CUDA_NO_HALF_CONVERSIONS__",
    "-D__CUDA_NO_BFLOAT16_CONVERSIONS__",
    "-D__CUDA_NO_HALF2_OPERATORS__",
]
STRICT = ["-Werror", "all-warnings", "-Xcompiler", "-Wall,-Wextra"]
# The kernels compiled by g++ and run on the CPU (tests/cuda/host_emulation.h).
EMULATION = [
    "-x",
    "c++",
    "-std=c++17",
    "-O2",
    "-w",
    "-DFUSED_OPTIM_HOST_EMULATION",
    "-D__STORAGE__=extern",
    "-include",
    str(ROOT / "tests" / "cuda" / "host_emulation.h"),
]

pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")


@functools.cache
def _cuda_include() -> Path:
    """The CUDA toolkit's include folder (nvcc may be a wrapper script outside the toolkit)."""
    candidates = [Path(os.environ[v]) / "include" for v in ("CUDA_HOME", "CUDA_PATH") if v in os.environ]
    candidates += [Path(NVCC).resolve().parent.parent / "include", Path("/usr/local/cuda/include")]
    for path in candidates:
        if (path / "cuda_runtime.h").exists():
            return path
    dryrun = _run([NVCC, "--dryrun", "-c", "-x", "cu", "/dev/null"]).stderr
    for token in dryrun.split():
        path = Path(token.strip('"').removeprefix("-I"))
        if token.strip('"').startswith("-I") and (path / "cuda_runtime.h").exists():
            return path
    raise FileNotFoundError("cuda_runtime.h not found next to nvcc")


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _run_all(cmds: list[list[str]]) -> subprocess.CompletedProcess:
    """Runs commands in order, stopping at the first failure; returns the last one run."""
    result = None
    for cmd in cmds:
        result = _run(cmd)
        if result.returncode != 0:
            break
    return result


class Jobs:
    """Every compile of this module, started together on a small pool (the files are independent;
    two workers where the machine has two cores) and awaited by the test that needs each."""

    def __init__(self, out: Path):
        self.out = out
        workers = int(os.environ.get("OPTIMIZERS_COMPILE_JOBS", max(1, min(4, os.cpu_count() or 1))))
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.futures: dict[str, Future] = {}
        for path in KERNEL_FILES:
            cmd = [
                NVCC,
                "-c",
                "-std=c++17",
                "-O3",
                *ARCHS,
                *TORCH_DEFINES,
                *STRICT,
                str(path),
                "-o",
                str(out / f"{path.stem}.o"),
            ]
            self.futures[path.name] = self.pool.submit(_run, cmd)
        pack = out / "test_pack_chunks"
        self.futures["pack"] = self.pool.submit(
            _run_all,
            [
                [NVCC, "-std=c++17", "-O2", ARCHS[0], "tests/cuda/test_pack_chunks.cu", "-o", str(pack)],
                [str(pack)],
            ],
        )
        if GXX is not None:
            self.futures["emulated"] = self.pool.submit(self._emulated)
            self.futures["glue"] = self.pool.submit(self._glue)

    def _emulated(self) -> subprocess.CompletedProcess:
        inc = f"-I{_cuda_include()}"
        objects, cmds = [], []
        for path in KERNEL_FILES:
            obj = self.out / f"{path.stem}.emulated.o"
            objects.append(str(obj))
            cmds.append([GXX, *EMULATION, inc, "-c", str(path), "-o", str(obj)])
        exe = self.out / "test_kernels_emulated"
        cmds.append(
            [
                GXX,
                *EMULATION,
                inc,
                "tests/cuda/test_kernels_emulated.cpp",
                "-x",
                "none",
                *objects,
                "-o",
                str(exe),
            ]
        )
        cmds.append([str(exe)])
        return _run_all(cmds)

    def _glue(self) -> subprocess.CompletedProcess | None:
        from torch.utils.cpp_extension import include_paths

        includes = [Path(p) for p in include_paths()]
        if not any((p / "c10" / "cuda" / "CUDAStream.h").exists() for p in includes):
            return None
        # A CPU-only torch ships the c10/cuda headers but not the CMake-generated cuda_cmake_macros.h.
        cmd = [
            GXX,
            "-fsyntax-only",
            "-std=c++20",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE",
            "-DOPTIMIZERS_WITH_CUDA",
            *[f"-isystem{p}" for p in includes],
            f"-isystem{_cuda_include()}",
            str(CUDA_SRC / "fused_cuda.cpp"),
        ]
        return _run(cmd)

    def result(self, name: str) -> subprocess.CompletedProcess | None:
        return self.futures[name].result()


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    jobs = Jobs(tmp_path_factory.mktemp("cuda_build"))
    yield jobs
    jobs.pool.shutdown(wait=True)


def _check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)}\n{result.stdout}\n{result.stderr}"


def test_there_are_kernel_files():
    """One kernel file per operator of the optimizer classes (adam_ in adam.cu)."""
    assert {p.name for p in KERNEL_FILES} >= {f"{info.cls.op_name.removesuffix('_')}.cu" for info in OPTIM_DB}


@pytest.mark.parametrize("path", KERNEL_FILES, ids=[p.name for p in KERNEL_FILES])
def test_kernel_file_compiles_for_sm80_and_sm90(jobs, path):
    _check(jobs.result(path.name))


def test_kernel_files_include_no_torch_headers():
    for path in [*KERNEL_FILES, *CUDA_SRC.glob("*.cuh"), CUDA_SRC / "launch.h"]:
        text = path.read_text()
        for header in ("<torch/", "<ATen/", "<c10/"):
            assert header not in text, f"{path.name} includes {header}"


def test_launcher_packs_every_chunk_once(jobs):
    _check(jobs.result("pack"))


@pytest.mark.skipif(GXX is None, reason="g++ is not on PATH")
def test_kernels_emulated_on_cpu_match_rules(jobs):
    _check(jobs.result("emulated"))


@pytest.mark.skipif(GXX is None, reason="g++ is not on PATH")
def test_aten_glue_syntax(jobs):
    result = jobs.result("glue")
    if result is None:
        pytest.skip("this torch ships no c10/cuda headers")
    _check(result)
