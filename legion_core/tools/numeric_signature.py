"""The numeric signature of this process: what decides the last bits of the policy's float32 arithmetic.

The policy is float32 numpy (legion_core/contracts/bundle.py, `Policy`): its matmuls run in numpy's OpenBLAS, whose
DYNAMIC_ARCH build picks a kernel per CPU at load time (SkylakeX on an AVX-512 Xeon, Haswell/Zen on an EPYC;
`OPENBLAS_CORETYPE` forces one), and its element-wise functions (tanh, maximum) run in numpy's own SIMD
loops, dispatched per CPU too. Two kernels sum a dot product in another order, so the same bundle on the
same observation gives actions that differ in the last bits (up to 2.08e-06 between SkylakeX and Haswell
on the shipped demo). The regression check therefore compares actions bit-exactly only where the signature of
the machine that checks equals the one the bag was recorded with, and within a float32 tolerance otherwise
(docs/decisions/portable-regression-check.md).

A signature is a plain JSON-able dict. `COMPARED` names the fields that select the code that computes
(the rest is recorded to tell a reader which machine it was):

- `machine`: the instruction set architecture (x86_64, aarch64).
- `blas.internal_api`, `blas.version`, `blas.architecture`: numpy's BLAS library, its version and the core
  type (kernel set) it runs, as threadpoolctl reports them.
- `numpy.version`, `numpy.simd`: numpy's version and the SIMD dispatch targets it uses on this CPU.

Not compared: the CPU vendor/model (the same kernels on another CPU give the same bits: on the AVX-512 Xeon
forced to Haswell kernels, the shipped demo recorded elsewhere replays bit-exactly, 2806/2806 actions) and
the BLAS thread count (the runtime's nodes run with OPENBLAS_NUM_THREADS=1 while a checking process may use
more; 1 and 2 threads gave identical actions on the shipped demo).

The bag's signature is taken by the recording process (`legion_core.tools.bags.record.Recorder`): it stands for
the policy node's only when the runtime ran on the same machine in the same environment, as with
`legion run`, the demo and the replay check. A bag recorded on another PC than the policy's must not carry
it (record there, or strip it): an equal signature would wrongly ask for bit-exactness.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

SIGNATURE_VERSION = 1
METADATA_KEY = "legion.numeric_signature"
"""The key of the signature (JSON) in a bag's metadata.yaml `custom_data`."""
COMPARED = (
    "machine",
    "blas.internal_api",
    "blas.version",
    "blas.architecture",
    "numpy.version",
    "numpy.simd",
)
_ISA = ("SSE42", "AVX", "AVX2", "FMA3", "AVX512F", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR", "ASIMD", "SVE")


def _cpu() -> dict[str, Any]:
    """Vendor, family, model and name of the CPU (Linux /proc/cpuinfo; platform's guess elsewhere)."""
    info: dict[str, Any] = {
        "vendor": None,
        "family": None,
        "model": None,
        "model_name": platform.processor() or None,
    }
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    keys = {"vendor_id": "vendor", "cpu family": "family", "model": "model", "model name": "model_name",
            "CPU implementer": "vendor", "CPU part": "model"}  # fmt: skip
    for line in text.split("\n\n", 1)[0].splitlines():
        k, _, v = line.partition(":")
        k = k.strip()
        if k in keys:
            info[keys[k]] = v.strip()
    return info


def _numpy() -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {"version": np.__version__, "simd": None}
    try:
        try:
            from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        except ImportError:  # numpy 1.x
            from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:
        return out
    out["simd"] = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    # The ISA extensions that decide float32 kernels, as numpy sees them (recorded with the CPU, not compared).
    out["_isa"] = [f for f in _ISA if __cpu_features__.get(f)]
    return out


def _blas() -> dict[str, Any] | None:
    """numpy's BLAS as loaded in this process (threadpoolctl), or None when it cannot be told."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    # Other libraries may have loaded their own BLAS (torch's MKL): numpy's lives in its wheel's folder.
    np_dir = Path(np.__file__).resolve().parent
    mine = [
        i
        for i in libs
        if Path(i.get("filepath", "")).resolve().parent in (np_dir.parent / "numpy.libs", np_dir)
    ]
    lib = mine[0] if len(mine) == 1 else (libs[0] if len(libs) == 1 else None)
    if lib is None:
        return None
    return {
        "internal_api": lib.get("internal_api"),
        "version": lib.get("version"),
        "architecture": lib.get("architecture"),
        "num_threads": lib.get("num_threads"),
        "coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
    }


def numeric_signature() -> dict[str, Any]:
    """The signature of this process (see the module docstring); unknown parts are None."""
    cpu, npy = _cpu(), _numpy()
    cpu["isa"] = npy.pop("_isa", None)
    return {
        "version": SIGNATURE_VERSION,
        "machine": platform.machine() or None,
        "cpu": cpu,
        "blas": _blas(),
        "numpy": npy,
    }


def _field(sig: dict | None, dotted: str) -> Any:
    v: Any = sig
    for part in dotted.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    return v


def compare(recorded: dict | None, here: dict | None) -> tuple[bool, str]:
    """(same, why): same only when every COMPARED field is known on both sides and equal."""
    if not recorded:
        return False, "the recording has no numeric signature (unknown machine)"
    if not here:
        return False, "this machine's numeric signature is unknown"
    unknown = [f for f in COMPARED if _field(recorded, f) is None or _field(here, f) is None]
    if unknown:
        return False, f"numeric signature fields unknown: {unknown}"
    differ = [f for f in COMPARED if _field(recorded, f) != _field(here, f)]
    if differ:
        return False, "numeric signatures differ: " + ", ".join(
            f"{f} {_field(recorded, f)!r} recorded vs {_field(here, f)!r} here" for f in differ
        )
    return True, "numeric signature equals the recording's (" + ", ".join(
        f"{f}={_field(here, f)!r}" for f in ("blas.architecture", "numpy.version")
    ) + ")"


def summary(sig: dict | None) -> dict[str, Any] | None:
    """The compared fields (and the CPU name) of a signature, for reports."""
    if not sig:
        return None
    return {f: _field(sig, f) for f in (*COMPARED, "cpu.model_name")}


if __name__ == "__main__":  # `python -m legion_core.tools.numeric_signature`: this process' signature as JSON
    print(json.dumps(numeric_signature(), indent=1))
