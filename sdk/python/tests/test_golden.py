"""The golden vectors in golden/vectors decode and re-encode byte for byte in Python (AC-SDK-5)."""
from __future__ import annotations

import json
import pathlib

import pytest
from google.protobuf import json_format

from arqon.v1 import envelope_pb2

VECTORS = sorted((pathlib.Path(__file__).resolve().parents[3] / "golden" / "vectors").glob("*.snap"))


def load(path: pathlib.Path) -> dict:
    # An insta snapshot: a header between two `---` lines, then one JSON document.
    return json.loads(path.read_text(encoding="utf-8").split("---\n", 2)[2])


def test_there_are_vectors_for_every_body() -> None:
    bodies = {load(p)["body"] for p in VECTORS}
    oneof = {f.name for f in envelope_pb2.Envelope.DESCRIPTOR.oneofs_by_name["body"].fields}
    assert oneof <= bodies, f"bodies without a vector: {sorted(oneof - bodies)}"


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_vector_round_trips_byte_for_byte(path: pathlib.Path) -> None:
    # AC-SDK-5
    doc = load(path)
    wire = bytes.fromhex(doc["hex"])
    decoded = envelope_pb2.Envelope.FromString(wire)
    assert decoded.WhichOneof("body") == doc["body"]
    assert decoded.SerializeToString(deterministic=True) == wire
    built = json_format.ParseDict(doc["json"], envelope_pb2.Envelope())
    assert built == decoded
    assert built.SerializeToString(deterministic=True) == wire
    assert json_format.MessageToDict(decoded) == doc["json"]


def test_a_flipped_bit_is_detected() -> None:
    doc = load(VECTORS[0])
    wire = bytearray(bytes.fromhex(doc["hex"]))
    wire[len(wire) // 2] ^= 0x01
    try:
        decoded = envelope_pb2.Envelope.FromString(bytes(wire))
    except Exception:
        return  # refusing to decode is a detection too
    assert decoded != json_format.ParseDict(doc["json"], envelope_pb2.Envelope())
