"""Dataset loaders on small files written here in each real format, the checksums, the search
path, the download command's fetch-and-verify path (loopback HTTP only) and the seeded split."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dse.errors import NotFoundError
from dse.trial.data import (
    SOURCES,
    ChecksumError,
    DownloadError,
    FormatError,
    clear_cache,
    download,
    load_dataset,
    search_dirs,
    split,
)
from dse.trial.data.formats import read_idx

RNG = np.random.default_rng(7)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx_dataset(folder: Path, n_train: int = 30, n_test: int = 12) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": RNG.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": RNG.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        (folder / name).write_bytes(gzip.compress(_idx_bytes(arr)))
    return arrays


def _source_for(name: str, folder: Path):  # the canonical file list with this folder's checksums
    src = SOURCES[name]
    return src.with_checksums({f.path: _md5(folder / f.path) for f in src.files})


def test_idx_files_load_with_their_checksums(tmp_path: Path) -> None:
    arrays = _write_idx_dataset(tmp_path / "mnist")
    data = load_dataset("mnist", tmp_path, source=_source_for("mnist", tmp_path / "mnist"))
    assert data.train_x.shape == (30, 1, 28, 28) and data.test_x.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(data.train_x[:, 0], arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(data.test_y, arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64))
    assert data.train_y.dtype == np.int64 and data.scale == pytest.approx(1 / 255)


def test_canonical_checksums_reject_files_that_are_not_the_published_ones(tmp_path: Path) -> None:
    _write_idx_dataset(tmp_path / "fashion-mnist")
    with pytest.raises(ChecksumError, match="does not match the canonical"):
        load_dataset("fashion-mnist", tmp_path, cache=False)


def test_a_changed_byte_fails_the_checksum(tmp_path: Path) -> None:
    _write_idx_dataset(tmp_path / "mnist")
    source = _source_for("mnist", tmp_path / "mnist")
    target = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="t10k-labels"):
        load_dataset("mnist", tmp_path, source=source)


def test_idx_reader_rejects_bad_magic_and_truncated_data(tmp_path: Path) -> None:
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(FormatError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short.idx"
    short.write_bytes(_idx_bytes(np.zeros((4, 3, 3), np.uint8))[:-5])
    with pytest.raises(FormatError, match="header says shape"):
        read_idx(short)


def test_missing_file_names_the_file_the_folders_and_the_download_command(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSE_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(NotFoundError) as info:
        load_dataset("mnist")
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "dse data download mnist" in msg
    for folder in (tmp_path / "env" / "mnist", tmp_path / "env", tmp_path / "cache" / "analog-dse" / "datasets" / "mnist"):
        assert str(folder) in msg


def test_search_order_explicit_then_env_then_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSE_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert search_dirs("svhn", tmp_path / "x") == [tmp_path / "x" / "svhn", tmp_path / "x"]
    assert search_dirs("svhn") == [tmp_path / "env" / "svhn", tmp_path / "env",
                                   tmp_path / "cache" / "analog-dse" / "datasets" / "svhn"]
    monkeypatch.delenv("DSE_DATA_DIR")
    assert search_dirs("svhn") == [tmp_path / "cache" / "analog-dse" / "datasets" / "svhn"]


def test_files_found_through_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_idx_dataset(tmp_path / "mnist")  # directly in $DSE_DATA_DIR (no <name>/ level)
    for f in list((tmp_path / "mnist").iterdir()):
        f.rename(tmp_path / f.name)
    monkeypatch.setenv("DSE_DATA_DIR", str(tmp_path))
    data = load_dataset("mnist", source=_source_for("mnist", tmp_path))
    assert len(data.train_y) == 30


def _cifar_batch(n: int) -> dict:
    return {b"batch_label": b"test", b"labels": RNG.integers(0, 10, n).tolist(),
            b"data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x"] * n}


def _write_cifar(folder: Path) -> dict[str, dict]:
    root = folder / "cifar-10-batches-py"
    root.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": _cifar_batch(4) for i in range(1, 6)} | {"test_batch": _cifar_batch(5)}
    for name, batch in batches.items():
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return batches


def test_cifar10_pickle_batches_load_channel_major(tmp_path: Path) -> None:
    batches = _write_cifar(tmp_path / "cifar10")
    data = load_dataset("cifar10", tmp_path, source=_source_for("cifar10", tmp_path / "cifar10"))
    assert data.train_x.shape == (20, 3, 32, 32) and data.test_x.shape == (5, 3, 32, 32)
    first = batches["data_batch_1"]
    np.testing.assert_array_equal(data.train_x[0, 1].reshape(-1), first[b"data"][0, 1024:2048])  # green plane
    np.testing.assert_array_equal(data.train_y[:4], first[b"labels"])
    np.testing.assert_array_equal(data.test_y, batches["test_batch"][b"labels"])


def test_svhn_mat_files_load_with_label_10_as_digit_0(tmp_path: Path) -> None:
    from scipy.io import savemat

    folder = tmp_path / "svhn"
    folder.mkdir()
    x_train = RNG.integers(0, 256, (32, 32, 3, 6), dtype=np.uint8)
    y_train = np.array([[10], [1], [2], [9], [10], [5]], dtype=np.uint8)
    savemat(folder / "train_32x32.mat", {"X": x_train, "y": y_train})
    savemat(folder / "test_32x32.mat", {"X": x_train[..., :3], "y": y_train[:3]})
    data = load_dataset("svhn", tmp_path, source=_source_for("svhn", folder))
    assert data.train_x.shape == (6, 3, 32, 32)
    np.testing.assert_array_equal(data.train_y, [0, 1, 2, 9, 0, 5])
    np.testing.assert_array_equal(data.train_x[2, 0], x_train[:, :, 0, 2])  # (H, W) of red, example 2


def test_digits_are_embedded_with_a_fixed_stratified_test_split() -> None:
    data = load_dataset("digits")
    assert len(data.train_y) + len(data.test_y) == 1797
    assert data.shape == (1, 8, 8) and data.classes == 10
    assert int(data.train_x.max()) == 16 and data.scale == pytest.approx(1 / 16)
    counts = np.bincount(data.test_y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of each class (174..183 per class)
    assert load_dataset("digits") is data  # cached in-process


def test_split_is_seeded_disjoint_and_honours_the_subsets() -> None:
    data = load_dataset("digits")
    a, b = split(data, 0.1, seed=3), split(data, 0.1, seed=3)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.validation, b.validation)
    assert not set(a.train) & set(a.validation)
    assert len(a.train) + len(a.validation) == len(data.train_y)
    assert len(a.validation) == round(0.1 * len(data.train_y))
    c = split(data, 0.1, seed=4)
    assert not np.array_equal(a.validation, c.validation)
    d = split(data, 0.2, seed=3, max_train_samples=100, max_test_samples=50)
    assert (len(d.train), len(d.validation), len(d.test)) == (80, 20, 50)


@pytest.fixture
def loopback_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


def test_download_fetches_verifies_and_falls_back_to_the_next_mirror(tmp_path: Path, loopback_server) -> None:
    url, served = loopback_server
    _write_idx_dataset(served / "files")
    source = _source_for("mnist", served / "files").with_mirrors(url + "missing/", url + "files/")
    log: list[str] = []
    folder = download("mnist", tmp_path / "data", source=source, log=log.append)
    assert folder == tmp_path / "data" / "mnist"
    for f in source.files:
        assert (folder / f.path).read_bytes() == (served / "files" / f.path).read_bytes()
    assert any("missing/" in line for line in log)
    clear_cache()
    assert len(load_dataset("mnist", tmp_path / "data", source=source).test_y) == 12
    log.clear()
    download("mnist", tmp_path / "data", source=source, log=log.append)  # nothing to fetch twice
    assert not any("fetching" in line for line in log)


def test_download_rejects_a_file_with_the_wrong_checksum(tmp_path: Path, loopback_server) -> None:
    url, served = loopback_server
    _write_idx_dataset(served)
    source = SOURCES["mnist"].with_mirrors(url)  # canonical checksums: the served files differ
    with pytest.raises(DownloadError, match="md5"):
        download("mnist", tmp_path / "data", source=source)
    assert not list((tmp_path / "data" / "mnist").glob("*.gz"))  # nothing unverified is kept


def test_download_unpacks_an_archive(tmp_path: Path, loopback_server) -> None:
    url, served = loopback_server
    _write_cifar(tmp_path / "src")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    (served / "cifar-10-python.tar.gz").write_bytes(buf.getvalue())
    from dse.trial.data import Archive, Source

    base = _source_for("cifar10", tmp_path / "src")
    source = Source(base.name, base.files, (url,), Archive("cifar-10-python.tar.gz",
                                                           hashlib.md5(buf.getvalue()).hexdigest()))
    folder = download("cifar10", tmp_path / "data", source=source)
    assert (folder / "cifar-10-batches-py" / "test_batch").is_file()
    assert not (folder / "cifar-10-python.tar.gz").exists()
    assert load_dataset("cifar10", tmp_path / "data", source=source).train_x.shape == (20, 3, 32, 32)


def test_shared_mnist_has_60000_train_and_10000_test_images(shared_datasets: Path) -> None:
    data = load_dataset("mnist", shared_datasets)
    assert data.train_x.shape == (60_000, 1, 28, 28) and data.test_x.shape == (10_000, 1, 28, 28)
    # Class counts published with the data set (see PROVENANCE.txt beside the files).
    assert np.bincount(data.train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(data.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_shared_fashion_mnist_has_balanced_classes(shared_datasets: Path) -> None:
    data = load_dataset("fashion-mnist", shared_datasets)
    assert np.bincount(data.train_y).tolist() == [6000] * 10
    assert np.bincount(data.test_y).tolist() == [1000] * 10
