"""Sphinx configuration for the sklottery documentation.

Build with ``make docs`` (``sphinx-build -W``: warnings are errors). The
gallery is built from ``examples/`` by sphinx-gallery; every example is run
at build time (each takes seconds of CPU on scikit-learn's data or on the
CSV committed by ``benchmarks/reproduce_mnist.py``; none downloads).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import sklottery  # noqa: E402

project = "sklottery"
author = "sklottery developers"
copyright = "sklottery developers"
release = sklottery.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = []
exclude_patterns = ["_build", "generated/*.examples", "sg_execution_times.rst"]
root_doc = "index"
default_role = "literal"

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False

# Cross-references to other projects are rendered as text (the docs build
# offline in CI, so no intersphinx inventories are fetched).
intersphinx_mapping = {}
nitpicky = False

# -- gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # every example runs at build time: each takes seconds of CPU
    "filename_pattern": r"\.py$",
    "ignore_pattern": r"__init__\.py|/data/",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "show_memory": False,
    "plot_gallery": "True",
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
}

# -- HTML ----------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"sklottery {release}"
html_static_path = []
html_theme_options = {
    "description": "Lottery-ticket pruning for PyTorch networks, as "
    "scikit-learn estimators",
    "fixed_sidebar": True,
}


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document sklottery's own methods only: scikit-learn's generated
    ``set_*_request`` methods and members inherited from scikit-learn, skorch
    or torch are documented by those projects."""
    target = getattr(obj, "__func__", obj)
    module = getattr(target, "__module__", None)
    if module and not module.startswith("sklottery"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
