"""The store's public surface: documented, typed, free of ORM objects, and all of it used
by ingestd itself."""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import datetime
import inspect
import types
import typing
from pathlib import Path

import pytest

import ingestd.store
from ingestd.store import Store, records

PUBLIC = sorted(
    name for name, _ in inspect.getmembers(Store, inspect.isfunction) if not name.startswith("_")
)
# What a Store method may hand back: plain values and the frozen records.
PLAIN = {int, float, str, bool, type(None), list, dict, tuple, set, datetime.datetime}
PLAIN |= {collections.abc.Generator}


def _classes(hint: object) -> set[object]:
    """Every class mentioned in a type hint, with the arguments of generics."""
    origin = typing.get_origin(hint)
    if origin is None:
        return {type(None) if hint is None else hint}
    found: set[object] = set() if origin in (typing.Union, types.UnionType) else {origin}
    for arg in typing.get_args(hint):
        found |= _classes(arg)
    return found


def test_store_has_the_methods_the_pipeline_calls() -> None:
    expected = {
        "sync_feeds", "list_feeds", "lease_due_feeds", "release_lease", "record_polls",
        "add_entry_groups", "add_revisions", "poll_lookup", "index_entries",
        "entries_without_file", "archive_paths_in_order", "next_file_id", "entry_counts",
        "enable_feed", "disable_feed", "close",
    }  # fmt: skip
    assert expected <= set(PUBLIC)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_methods_are_documented_and_return_plain_values(name: str) -> None:
    method = getattr(Store, name)
    assert (method.__doc__ or "").strip(), f"{name} has no docstring"
    returned = typing.get_type_hints(method)["return"]
    for cls in _classes(returned):
        from_records = getattr(cls, "__module__", "") == records.__name__
        assert cls in PLAIN or from_records, f"{name} returns {cls!r}"


@pytest.mark.parametrize(
    "cls",
    [
        records.FeedRecord,
        records.EntryRecord,
        records.RevisionRecord,
        records.FetchRecord,
        records.SyncResult,
    ],  # fmt: skip
)
def test_records_are_frozen(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert dataclasses.is_dataclass(cls) and params.frozen


def test_exports_resolve() -> None:
    for name in ingestd.store.__all__:
        assert getattr(ingestd.store, name) is not None, name


def _names_used_outside_the_store() -> set[str]:
    """Every attribute name read anywhere in ingestd outside ``ingestd/store/``."""
    package = Path(ingestd.store.__file__).parent
    found: set[str] = set()
    for path in package.parent.rglob("*.py"):
        if package in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    return found


def test_every_public_method_is_used_by_ingestd_outside_the_store() -> None:
    # The store's API is what production runs: a method only tests call does not belong
    # in it (tests build on the production calls, tests/storehelp.py), and one only the
    # store itself calls is private. Matched by name, so a method another class shares a
    # name with can slip by; none may be added that nothing in ingestd names at all.
    surface = {
        name
        for name, member in inspect.getmembers(Store)
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    }
    assert surface - _names_used_outside_the_store() == set()
