"""Generates arqon/v1/*_pb2.py(i) from proto/ with grpcio-tools' bundled protoc; --check fails on drift."""
from __future__ import annotations

import argparse
import filecmp
import pathlib
import sys
import tempfile

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[3]
PROTO = ROOT / "proto"
OUT = ROOT / "sdk" / "python" / "src"
PACKAGE = OUT / "arqon" / "v1"


def generate(into: pathlib.Path, proto: pathlib.Path = PROTO) -> list[pathlib.Path]:
    files = sorted(proto.glob("arqon/v1/*.proto"))
    args = ["protoc", f"-I{proto}", f"--python_out={into}", f"--pyi_out={into}", *map(str, files)]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((into / "arqon" / "v1").glob("*_pb2.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the committed code differs")
    parser.add_argument("--proto", type=pathlib.Path, default=PROTO, help="the proto root (default: proto/)")
    args = parser.parse_args()
    if not args.check:
        generate(OUT)
        print(f"generated into {PACKAGE}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(pathlib.Path(tmp), args.proto)
        committed = sorted(PACKAGE.glob("*_pb2.py*"))
        drift = [f.name for f in fresh if not (PACKAGE / f.name).exists() or not filecmp.cmp(f, PACKAGE / f.name, shallow=False)]
        extra = sorted({c.name for c in committed} - {f.name for f in fresh})
        if drift or extra:
            print(f"generated Python code is stale: {drift + extra}; run python sdk/python/tools/gen_proto.py", file=sys.stderr)
            return 1
    print("generated Python code matches proto/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
