"""Generated Protobuf code of the arqon.v1 wire contract (do not edit; see tools/gen_proto.py)."""
