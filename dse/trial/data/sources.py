"""Where each dataset's canonical files come from and what their checksums are (no I/O here).

Every file a loader reads is listed with its MD5 (the checksum the datasets' publishers and
torchvision use); ``dse data download`` fetches from the first mirror that answers and verifies
every file, and every load verifies them again, so a truncated or altered file is never used.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataFile:
    """One file a loader reads, relative to the dataset's folder."""

    path: str
    """Path inside the dataset folder (``train-images-idx3-ubyte.gz``,
    ``cifar-10-batches-py/data_batch_1``)."""
    md5: str
    """Hex MD5 digest of the canonical file."""


@dataclass(frozen=True)
class Archive:
    """A canonical archive that unpacks into some of a dataset's files."""

    name: str
    """File name of the archive on the mirrors (``cifar-10-python.tar.gz``)."""
    md5: str
    """Hex MD5 digest of the archive."""


@dataclass(frozen=True)
class Source:
    """A dataset's files and where to download them."""

    name: str
    """Dataset name (``mnist``); also the folder the files live in under a data directory."""
    files: tuple[DataFile, ...]
    """Every file the loader reads."""
    mirrors: tuple[str, ...]
    """Base URLs, tried in order; a file (or the archive) is fetched from ``mirror + name``."""
    archive: Archive | None = None
    """When set, the archive is fetched and unpacked instead of the files one by one."""
    homepage: str = ""
    """The publisher's page (for the error message and the docs)."""

    def file(self, path: str) -> DataFile:
        """The listed file with this path."""
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)

    def with_checksums(self, md5s: dict[str, str]) -> Source:
        """A copy whose files carry other MD5s (for files written by tests or local mirrors)."""
        files = tuple(DataFile(f.path, md5s.get(f.path, f.md5)) for f in self.files)
        return Source(self.name, files, self.mirrors, self.archive, self.homepage)

    def with_mirrors(self, *mirrors: str) -> Source:
        """A copy downloading from other base URLs."""
        return Source(self.name, self.files, tuple(mirrors), self.archive, self.homepage)


_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

SOURCES: dict[str, Source] = {
    "mnist": Source(
        name="mnist",
        files=tuple(DataFile(p, m) for p, m in zip(_IDX_FILES, (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": Source(
        name="fashion-mnist",
        files=tuple(DataFile(p, m) for p, m in zip(_IDX_FILES, (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    ),
    "cifar10": Source(
        name="cifar10",
        files=(
            DataFile("cifar-10-batches-py/data_batch_1", "c99cafc152244af753f735de768cd75f"),
            DataFile("cifar-10-batches-py/data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            DataFile("cifar-10-batches-py/data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            DataFile("cifar-10-batches-py/data_batch_4", "634d18415352ddfa80567beed471001a"),
            DataFile("cifar-10-batches-py/data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            DataFile("cifar-10-batches-py/test_batch", "40351d587109b95175f43aff81a1287e"),
        ),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        archive=Archive("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "svhn": Source(
        name="svhn",
        files=(
            DataFile("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
            DataFile("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
        ),
        mirrors=("http://ufldl.stanford.edu/housenumbers/",),
        homepage="http://ufldl.stanford.edu/housenumbers/",
    ),
}
"""Canonical files of every dataset that is read from files (``digits`` is embedded)."""
