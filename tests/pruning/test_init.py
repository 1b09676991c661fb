"""sklottery.pruning is torch only: no pandas, skorch or sklearn on import."""

import subprocess
import sys
from pathlib import Path

import sklottery

# the pruning package imported on its own: a bare ``sklottery`` package object
# stands in for sklottery/__init__.py (which imports every subpackage)
SCRIPT = """
import importlib, pkgutil, sys, types
pkg = types.ModuleType("sklottery")
pkg.__path__ = [{path!r}]
sys.modules["sklottery"] = pkg
import sklottery.pruning
names = [m.name for m in pkgutil.iter_modules(sklottery.pruning.__path__)]
assert "stats" in names and "masks" in names, names
for name in names:
    importlib.import_module("sklottery.pruning." + name)
others = sorted(m for m in sys.modules if m.startswith("sklottery.")
                and not m.startswith("sklottery.pruning"))
heavy = sorted(m for m in ("pandas", "skorch", "sklearn") if m in sys.modules)
print(others, heavy)
"""


def test_pruning_imports_torch_only():
    path = str(Path(sklottery.__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(path=path)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.split() == ["[]", "[]"]
