"""Every rule's CPU element loop is vectorized: the loops are plain C++ that the compiler vectorizes,
and one run-time flag left in a loop (a lerp direction or an amsgrad switch read from memory, a list
pointer reloaded in every iteration) makes GCC fall back to scalar code that is 3-7x slower, which
no numeric test notices. Compiles each rule's csrc/cpu/<rule>.cpp as setup.py does, with GCC's
vectorization report, and reads it for the element loop's line."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sysconfig
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch.utils.cpp_extension

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "csrc" / "cpu").glob("*.cpp"))
LOOP_HEADER = ROOT / "csrc" / "cpu" / "multi_tensor_cpu.h"
MARKER = "// the element loop (tests/test_vectorized.py)"
GXX = shutil.which("g++")


def _is_gcc() -> bool:
    return (
        GXX is not None
        and "Free Software Foundation"
        in subprocess.run([GXX, "--version"], capture_output=True, text=True).stdout
    )


pytestmark = pytest.mark.skipif(not _is_gcc(), reason="needs GCC (its -fopt-info report)")


def _setup_cxx_flags() -> list[str]:
    """setup.py's compiler flags for the CPU kernels, with its default -march=native."""
    match = re.search(r"cxx = \[(.*?)\]", (ROOT / "setup.py").read_text())
    return [flag.replace("{arch}", "native") for flag in re.findall(r'"([^"]*)"', match.group(1))]


def _vectorization_report(source: pathlib.Path, tmp_path: pathlib.Path) -> str:
    includes = [f"-I{p}" for p in torch.utils.cpp_extension.include_paths()]
    includes.append(f"-I{sysconfig.get_paths()['include']}")
    cmd = [GXX, "-std=c++17", "-fPIC", *_setup_cxx_flags(), *includes, "-D_GLIBCXX_USE_CXX11_ABI=1"]
    cmd += ["-c", str(source), "-o", str(tmp_path / f"{source.stem}.o"), "-fopt-info-vec-all"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def test_every_element_loop_is_vectorized(tmp_path):
    lines = LOOP_HEADER.read_text().splitlines()
    loop_line = next(i + 1 for i, line in enumerate(lines) if MARKER in line)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = dict(zip(SOURCES, pool.map(lambda s: _vectorization_report(s, tmp_path), SOURCES)))
    assert len(reports) >= 7, f"the rules' kernels: {[s.name for s in SOURCES]}"
    for source, report in reports.items():
        at_loop = [line for line in report.splitlines() if f"multi_tensor_cpu.h:{loop_line}:" in line]
        vectorized = [line for line in at_loop if "optimized: loop vectorized" in line]
        scalar = [line for line in at_loop if "missed: couldn't vectorize loop" in line]
        assert vectorized, f"{source.name}: no report for the element loop at multi_tensor_cpu.h:{loop_line}"
        assert not scalar, (
            f"{source.name}: {len(scalar)} element loops were not vectorized "
            f"(of {len(vectorized) + len(scalar)})"
        )
