"""Test modules are imported by basename (no __init__.py files), so two with one name collide."""

from collections import Counter
from pathlib import Path


def test_test_module_names_are_unique() -> None:
    tests = Path(__file__).parents[1]
    names = Counter(p.name for p in tests.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
