"""The 0.1 import paths users have keep working in 0.2, and the package's
layers import one way (bottom to top), with no underscore name imported
across subpackages."""

import ast
import importlib
from pathlib import Path

import pytest

import sklottery

PACKAGE = Path(sklottery.__file__).parent

#: bottom -> top: a module imports only its own layer or lower ones
LAYERS = ["pruning", "modules", "plotting", "config", "training", "inputs",
          "export", "lottery", "tickets", "estimators", "analysis", "scoring",
          "sparse", "demo", "cli", "__init__", "__main__"]


@pytest.mark.parametrize("path, names", [
    ("sklottery", sklottery.__all__),
    ("sklottery.scoring", ["sparsity_scorer", "make_ticket_scorer",
                           "make_sparsest_refit"]),
    ("sklottery.plotting", ["plot_rounds"]),
    ("sklottery.sparse", ["to_sparse", "SparseLinear", "LAYOUTS"]),
    ("sklottery.tickets", ["save_ticket", "load_ticket", "apply_ticket"]),
    ("sklottery.pruning", ["Pruner", "layer_table", "loss_gradients"]),
    ("sklottery.pruning.strategies", ["resolve_strategy"]),
    ("sklottery.pruning.at_init", ["needs_data"]),
    ("sklottery.pruning.rewind", ["REWIND_MODES"]),
    ("sklottery.pruning.masks", ["load_values", "snapshot"]),
    ("sklottery.pruning.scope", ["make_plan"]),
    ("sklottery.pruning.sparse_training", ["forward_macs", "train_macs"]),
    ("sklottery.pruning.sparse_linear", ["SparseTrainingLinear"]),
    ("sklottery.pruning.edge_popup", ["EdgePopup"]),
    ("sklottery.pruning.tensors", ["kth_smallest"]),
    ("sklottery.modules", ["MLP", "ConvNet", "RecurrentNet", "EmbeddingNet"]),
])
def test_0_1_import_paths_still_work(path, names):
    module = importlib.import_module(path)
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{path} lacks {missing}"


def test_every_face_exports_what_its_all_names():
    for pkg in ["analysis", "cli", "estimators", "export", "inputs", "lottery",
                "pruning", "tickets", "training"]:
        module = importlib.import_module(f"sklottery.{pkg}")
        assert module.__all__, pkg
        assert [n for n in module.__all__ if not hasattr(module, n)] == [], pkg


def _imports():
    """(importing unit, imported unit, imported names, target) of every
    ``from ... import`` inside the package."""
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_pkg = rel[-1] == "__init__"
        mod = list(rel[:-1] if is_pkg else rel)
        unit = mod[1] if len(mod) > 1 else "__init__"
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = mod if is_pkg else mod[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [a.name for a in node.names]
            if len(target) == 1:  # from sklottery import x (a module)
                for name in names:
                    yield unit, name, [], target + [name]
            else:
                yield unit, target[1], names, target


def test_imports_run_one_way_and_take_no_private_names_across_subpackages():
    upward, private = [], []
    for unit, other, names, target in _imports():
        if unit == other or other not in LAYERS or unit not in LAYERS:
            continue
        if LAYERS.index(other) > LAYERS.index(unit):
            upward.append((unit, ".".join(target)))
        hidden = [p for p in target[2:] if p.startswith("_")]
        hidden += [n for n in names if n.startswith("_")]
        if hidden:
            private.append((unit, ".".join(target), hidden))
    assert upward == []
    assert private == []


def test_import_sklottery_loads_no_torch_until_a_name_is_used():
    import subprocess
    import sys

    code = ("import sys, sklottery\n"
            "print('torch' in sys.modules)\n"
            "sklottery.LotteryTicketClassifier\n"
            "names = dir(sklottery)\n"
            "print('torch' in sys.modules, 'LotteryTicketClassifier' in names)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=300)
    assert result.stdout.split() == ["False", "True", "True"], result.stderr
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sklottery.nope  # noqa: B018
