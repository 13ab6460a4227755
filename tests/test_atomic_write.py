"""`audiotoken_core.safeload.atomic_write`: the one temp-file-and-rename helper every writer uses."""

import pytest


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    from audiotoken_core.safeload import atomic_write, atomic_write_text

    atomic_write_text(tmp_path / "a.json", "old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "a.json", broken)
    assert (tmp_path / "a.json").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
