"""What every result file records about how it was made: command, versions, commit, machine, threads."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from functools import cache

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@cache
def git_commit() -> str:
    """Short commit hash, with '-dirty' when tracked files have uncommitted changes; 'unknown' outside git."""
    commit = _git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}-dirty" if dirty else commit


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str | torch.device = "cpu") -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} cores)"


def command_line() -> str:
    """The command as typed (`optbench all`, `python -m benchmarks.speed ...`), without paths to the
    interpreter or to a console script."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if argv and os.path.basename(argv[0]).startswith("python"):
        argv[0] = "python"
        if len(argv) > 1 and os.path.isfile(argv[1]) and not argv[1].endswith(".py"):
            argv = [os.path.basename(argv[1]), *argv[2:]]  # a console script run by the interpreter
    elif argv:
        argv[0] = os.path.basename(argv[0])
    return " ".join(argv)


def run_metadata(device: str | torch.device = "cpu") -> dict[str, str | int]:
    """Columns added to every CSV row (and the header of every table)."""
    import optimizers

    return {
        "command": command_line(),
        "package_version": optimizers.__version__,
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda or "",
        "git_commit": git_commit(),
        "machine": platform.node(),
        "device": device_name(device),
        "threads": torch.get_num_threads(),
    }


def provenance_line(meta: dict) -> str:
    """One markdown line saying how a table was made."""
    return (
        f"Made by `{meta['command']}` at commit `{meta['git_commit']}` with optimizers "
        f"{meta['package_version']}, torch {meta['torch_version']}, on {meta['device']}, "
        f"{meta['threads']} thread{'' if int(meta['threads']) == 1 else 's'}."
    )


def png_metadata(meta: dict) -> dict[str, str]:
    """Text chunks for a PNG (`savefig(..., metadata=...)`): the provenance line, and the command alone."""
    return {"Description": provenance_line(meta).replace("`", ""), "Source": str(meta["command"])}


CODE_PATHS = ("benchmarks", "optimizers", "csrc")


def code_version(root: str = REPO) -> str:
    """A hash of every source file under CODE_PATHS and of the loaded extension binary: part of the key
    of every stored work unit (convergence units, CNN runs), so an edited source, committed or not,
    never reuses one."""
    digest = hashlib.sha256()
    for folder in CODE_PATHS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".py", ".cpp", ".h", ".cu", ".cuh")):
                    path = os.path.join(dirpath, name)
                    digest.update(os.path.relpath(path, root).encode())
                    with open(path, "rb") as f:
                        digest.update(f.read())
    import optimizers._extension as extension

    binary = getattr(extension._C, "__file__", None)
    if binary is not None and os.path.exists(binary):
        with open(binary, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]
