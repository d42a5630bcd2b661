"""The model store: atomic writes, checked reads, corrupt and truncated files set aside."""

from __future__ import annotations

import pytest

from dse.errors import NotFoundError, SpecError
from dse.models import ModelStore, StoreSource, model_store_for
from simulator.errors import CheckpointError
from simulator.modelfile import unwrap, wrap

KEY = "0123456789abcdef01234567"


def test_round_trip_and_layout(tmp_path) -> None:
    store = ModelStore(tmp_path)
    data = wrap(b"payload bytes")
    assert store.read(KEY) is None and KEY not in store
    path = store.write(KEY, data)
    assert path == tmp_path / "01" / f"{KEY}.model" and KEY in store
    assert store.read(KEY) == data and unwrap(store.get(KEY)) == b"payload bytes"
    assert list(store.keys()) == [KEY]
    assert not list(path.parent.glob("*.tmp"))  # nothing left of the atomic write


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_damaged_file_is_set_aside_and_reported_absent(tmp_path, damage: str) -> None:
    store = ModelStore(tmp_path)
    path = store.write(KEY, wrap(bytes(range(256)) * 10))
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[-100] ^= 0x01
    elif damage == "truncate":
        del raw[-10:]
    else:
        raw = bytearray(b"not a model at all")
    path.write_bytes(bytes(raw))
    assert store.read(KEY) is None
    assert not path.exists() and path.with_name(path.name + ".corrupt").exists()
    with pytest.raises(NotFoundError, match=KEY):
        store.get(KEY)


def test_writes_are_checked_and_keys_are_file_names_only(tmp_path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(CheckpointError, match="corrupt"):
        store.write(KEY, wrap(b"abc")[:-1] + b"x")
    for bad in ("../../etc/passwd", "ABCDEF012345", "abc", ""):
        with pytest.raises(SpecError, match="training_key"):
            store.path(bad)


def test_store_location_and_source(tmp_path) -> None:
    assert model_store_for(tmp_path).root == tmp_path / "models"
    assert model_store_for(tmp_path, tmp_path / "shared").root == tmp_path / "shared"
    assert model_store_for() is None
    source = StoreSource(ModelStore(tmp_path), {"study": "s", "trial_id": "t00001"})
    assert source.fetch(KEY) is None
    source.keep(KEY, wrap(b"x"))
    assert unwrap(source.fetch(KEY)) == b"x" and source.origin["trial_id"] == "t00001"
