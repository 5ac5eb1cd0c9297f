"""ecglit.utils.io: outputs appear whole or not at all, and never over a user's file unless asked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ecglit.errors import DataError, OutputExistsError
from ecglit.utils.io import (atomic_open, atomic_path, check_creatable, ensure_dir, refuse_existing,
                             temporary_sibling, write_text)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_existing_file_is_refused_and_kept(tmp_path):
    target = tmp_path / "predictions.csv"
    target.write_text("the user's own file\n")
    with pytest.raises(OutputExistsError, match=r"predictions\.csv: already exists.*overwrite=true"):
        write_text(target, "new")
    assert target.read_text() == "the user's own file\n"
    assert _leftovers(tmp_path) == []


def test_overwrite_replaces(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    write_text(target, "new", overwrite=True)
    assert target.read_text() == "new"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("complete old report")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_open(target, "w", overwrite=True) as f:
        f.write("half a rep")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "complete old report"
    assert _leftovers(tmp_path) == []


def test_nothing_appears_until_the_block_ends(tmp_path):
    target = tmp_path / "sub" / "dir" / "x.npy"  # missing parents are created
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"abc")
        assert not target.exists() and tmp.parent == target.parent
        assert tmp.suffix == ".npy"  # writers that go by the extension (np.save, savefig) keep the format
    assert target.read_bytes() == b"abc" and _leftovers(target.parent) == []


def test_a_target_created_meanwhile_is_not_replaced(tmp_path):
    """The no-clobber commit is a hard link, which fails if the name appeared while we were writing."""
    target = tmp_path / "out.csv"
    with pytest.raises(OutputExistsError), atomic_path(target) as tmp:
        tmp.write_text("ours")
        target.write_text("someone else's")
    assert target.read_text() == "someone else's" and _leftovers(tmp_path) == []


def test_uncreatable_folder_names_it(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(DataError, match=r"a_file/sub: cannot create the output folder \(Not a directory\)"):
        ensure_dir(blocker / "sub")
    with pytest.raises(DataError, match="cannot create the output folder"):
        write_text(blocker / "sub" / "x.txt", "y")
    with pytest.raises(DataError, match=r"a_file/sub/deeper: cannot create the output folder \(.*a_file is not"):
        check_creatable(blocker / "sub" / "deeper")  # found without creating anything
    check_creatable(tmp_path / "new" / "deeper")
    check_creatable(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_refuse_existing_and_hint(tmp_path):
    (tmp_path / "b").write_text("")
    refuse_existing([tmp_path / "a"])  # absent: fine
    refuse_existing([tmp_path / "b"], overwrite=True)
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        refuse_existing([tmp_path / "a", tmp_path / "b"], hint="--overwrite")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")  # a dangling link is still the user's
    with pytest.raises(OutputExistsError):
        refuse_existing([tmp_path / "dangling"])


def test_temporary_names_are_unique_hidden_siblings(tmp_path):
    a, b = temporary_sibling(tmp_path / "x.csv"), temporary_sibling(tmp_path / "x.csv")
    assert a != b and a.name.startswith(".x.tmp-") and a.suffix == ".csv" and a.parent == tmp_path


def test_atomic_open_only_writes(tmp_path):
    with pytest.raises(ValueError, match="new files only"), atomic_open(tmp_path / "x", "a"):
        pass
