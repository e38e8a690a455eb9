"""Import bnpy 0.1.7 on Python >= 3.11 with numpy 2 (docs/environment.md#bnpy).

bnpy 0.1.7 was written for Python 3.7 / numpy 1.x and touches four things that no longer exist:

* ``inspect.getargspec`` (removed in Python 3.11), used by ``bnpy.Runner`` to route keyword arguments;
* ``np.float`` (removed in numpy 1.24), used all over the observation models (``dtype=np.float``);
* ``np.bool8`` (removed in numpy 2), used by the birth planner;
* ``np.in1d`` and ``np.unicode_`` (removed in numpy 2 / 2.4), used by the model reader and plots;
* ``distutils`` (removed in Python 3.12; bnpy's Runner uses ``distutils.dir_util.mkpath``): a stub with that
  one function is registered only when no ``distutils`` (stdlib or setuptools' copy) can be imported;
* ``ndarray.newbyteorder`` (removed in numpy 2), used by ``bnpy.util.ShapeUtil.toCArray`` when a saved model is
  read back from its ``.mat`` files, i.e. on every warm start (``initname=<previous output dir>``).

:func:`import_bnpy` restores exactly these aliases (nothing else: no warnings are silenced and no global numpy
behaviour changes), imports bnpy, and swaps in a numpy-2-safe ``toCArray`` (the method cannot be put back on
``ndarray``, a C type, so the one bnpy function that calls it is replaced in every bnpy module that bound it). It is idempotent and cheap after the first call, so every caller
can simply do ``bnpy = import_bnpy()`` instead of ``import bnpy``.

The aliases are added to the live ``numpy`` and ``inspect`` modules, i.e. they are process-wide. They only
*add* names that numpy/Python removed, pointing at the modern equivalents, so no existing code changes behaviour.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import types
from collections import namedtuple
from types import ModuleType

import numpy as np

__all__ = ["apply_shim", "import_bnpy"]

_ArgSpec = namedtuple("ArgSpec", ["args", "varargs", "keywords", "defaults"])

# name -> modern object; only set when the name is missing, so the shim never shadows a real attribute.
_NUMPY_ALIASES = {
    "float": float,
    "bool8": np.bool_,
    "in1d": np.isin,
    "unicode_": np.str_,
}


def _getargspec(func):
    """Python <= 3.10 ``inspect.getargspec``: the 4-tuple view of ``getfullargspec``."""
    spec = inspect.getfullargspec(func)
    return _ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


def apply_shim() -> None:
    """Restore the removed names bnpy 0.1.7 needs. Safe to call any number of times."""
    if not hasattr(inspect, "getargspec"):
        inspect.getargspec = _getargspec  # type: ignore[attr-defined]
    for name, value in _NUMPY_ALIASES.items():
        # Look in the module dict: numpy 2's module __getattr__ answers some removed names with warnings/errors.
        if name not in np.__dict__:
            setattr(np, name, value)
    if "distutils.dir_util" not in sys.modules and importlib.util.find_spec("distutils") is None:
        distutils = types.ModuleType("distutils")
        dir_util = types.ModuleType("distutils.dir_util")
        dir_util.mkpath = lambda name, *args, **kwargs: os.makedirs(name, exist_ok=True)  # type: ignore[attr-defined]
        distutils.dir_util = dir_util  # type: ignore[attr-defined]
        sys.modules["distutils"], sys.modules["distutils.dir_util"] = distutils, dir_util


def _to_c_array(X, dtype=np.float64):
    """numpy-2 version of ``bnpy.util.ShapeUtil.toCArray``: a C-contiguous, native-byte-order, owned copy."""
    X = np.asarray_chkfinite(X, dtype=dtype, order="C")
    if X.dtype.byteorder not in ("=", "|"):
        X = X.astype(X.dtype.newbyteorder("="))  # was X.newbyteorder("=").copy()
    if not X.flags.owndata or X.flags.aligned:
        X = X.copy()
    assert X.flags.owndata
    assert X.flags.aligned
    return X


def _patch_to_c_array() -> None:
    from bnpy.util import ShapeUtil

    original = getattr(ShapeUtil, "_legion_original_toCArray", ShapeUtil.toCArray)
    ShapeUtil._legion_original_toCArray = original
    # `from bnpy.util import toCArray` bound the old function in ~15 modules: rebind it wherever it appears.
    for name, module in list(sys.modules.items()):
        if (name == "bnpy" or name.startswith("bnpy.")) and getattr(module, "toCArray", None) is original:
            module.toCArray = _to_c_array


def import_bnpy() -> ModuleType:
    """Apply the shim, then import and return the ``bnpy`` module."""
    apply_shim()
    import bnpy  # deliberately late: the shim must run first

    _patch_to_c_array()
    return bnpy
