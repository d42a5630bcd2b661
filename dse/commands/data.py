"""``dse data``: fetch the canonical dataset files (``download``) and show where they are (``info``)."""

from __future__ import annotations

import argparse
import sys

_FILE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "svhn")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="download datasets (checksums verified) and show where they are")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    d = data_sub.add_parser("download", help="fetch a dataset's canonical files and verify their checksums")
    d.add_argument("names", nargs="+", choices=_FILE_DATASETS, metavar="NAME",
                   help=f"dataset(s): {', '.join(_FILE_DATASETS)} (digits is embedded)")
    d.add_argument("--dir", default=None,
                   help="data directory (default: $DSE_DATA_DIR, else the per-user cache); files go to DIR/NAME/")
    d.set_defaults(func=_download)
    i = data_sub.add_parser("info", help="print the folders searched for each dataset and whether it is present")
    i.add_argument("--dir", default=None, help="data directory to check instead of $DSE_DATA_DIR / the cache")
    i.set_defaults(func=_info)


def _download(args: argparse.Namespace) -> int:
    from dse.trial.data import download

    for name in args.names:
        folder = download(name, args.dir, log=lambda msg: print(msg, file=sys.stderr))
        print(f"{name}: {folder}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from dse.errors import NotFoundError
    from dse.trial.data import SOURCES, search_dirs
    from dse.trial.data.locate import locate

    print("digits: embedded (scikit-learn), no files needed")
    for name in _FILE_DATASETS:
        try:
            print(f"{name}: {locate(SOURCES[name], args.dir)}")
        except NotFoundError:
            print(f"{name}: missing (searched {', '.join(str(d) for d in search_dirs(name, args.dir))}; "
                  f"run `dse data download {name}`)")
    return 0
