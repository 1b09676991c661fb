"""Name patterns: which tensors a user's ``include``, ``exclude`` or
``keep_trained`` means -- pure string matching.

A pattern is one of

* a plain name: a parameter name (``"fc1.weight"``), a module name
  (``"fc1"``) or a parent module (``"encoder"`` matches
  ``"encoder.0.weight"``) -- the 0.1 rule;
* a glob (a pattern holding ``*``, ``?`` or ``[``), matched with
  :func:`fnmatch.fnmatchcase` against the same names: ``"encoder.*"``,
  ``"*.attention.*.weight"`` (``*`` crosses dots);
* a regular expression written ``"re:<pattern>"``, matched in full
  (:func:`re.fullmatch`) against the same names: ``"re:encoder\\.\\d+\\..*"``.

Every name of a tensor is tried (its parameter name, the weight its layer
computes with, its module name), so ``"classifier"`` and ``"classifier.*"``
both match ``"classifier.weight"``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence

__all__ = ["REGEX_PREFIX", "as_patterns", "is_pattern", "matches", "pattern_hits"]

#: Prefix of a regular-expression pattern.
REGEX_PREFIX = "re:"


def as_patterns(patterns, what: str) -> list[str]:
    """``patterns`` (a str or a list, tuple or set of str) as a list of str;
    regular expressions are compiled once here so that a bad one is a
    ValueError naming ``what``."""
    if isinstance(patterns, str):
        patterns = [patterns]
    elif not isinstance(patterns, (list, tuple, set, frozenset)):
        raise TypeError(
            f"{what} must be a str or a list of str (layer or parameter names, "
            f"glob patterns or 're:<regex>'); got {type(patterns).__name__} "
            f"{patterns!r}"
        )
    out = []
    for pat in patterns:
        if not isinstance(pat, str):
            raise TypeError(
                f"{what} must hold layer names or patterns (str); got {pat!r}"
            )
        if pat.startswith(REGEX_PREFIX):
            try:
                re.compile(pat[len(REGEX_PREFIX):])
            except re.error as exc:
                raise ValueError(
                    f"{what}: {pat!r} is not a valid regular expression ({exc})"
                ) from None
        out.append(pat)
    return out


def is_pattern(pat: str) -> bool:
    """True for a glob or ``"re:"`` pattern, False for a plain name."""
    return pat.startswith(REGEX_PREFIX) or any(c in pat for c in "*?[")


def matches(pat: str, names: Iterable[str]) -> bool:
    """Whether ``pat`` matches one of ``names`` (the names of one tensor: its
    parameter name first)."""
    names = [n for n in names if n]
    if pat.startswith(REGEX_PREFIX):
        regex = re.compile(pat[len(REGEX_PREFIX):])
        return any(regex.fullmatch(n) for n in names)
    if is_pattern(pat):
        return any(fnmatch.fnmatchcase(n, pat) for n in names)
    return pat in names or names[0].startswith(pat + ".")


def pattern_hits(
    patterns: Sequence[str], candidates: Sequence[tuple[str, Sequence[str]]],
    what: str, *, known: str = "prunable tensor",
) -> list[str]:
    """The keys of ``candidates`` (``(key, names)`` pairs) any pattern matches,
    in the candidates' order. A pattern matching none is a ValueError listing
    the keys (a typo never silently selects nothing)."""
    hit: set[str] = set()
    for pat in as_patterns(patterns, what):
        found = [key for key, names in candidates if matches(pat, names)]
        if not found:
            raise ValueError(
                f"{what}: {pat!r} matches no {known}; {known}s are "
                f"{[key for key, _ in candidates]}"
            )
        hit.update(found)
    return [key for key, _ in candidates if key in hit]
