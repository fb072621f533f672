//! Which wire contract this crate speaks: its MAJOR version and its compiled descriptors.

/// The MAJOR version of the wire contract this crate speaks (`Header.protocol_version`).
pub const PROTOCOL_VERSION: u32 = 1;

/// The encoded `google.protobuf.FileDescriptorSet` of `arqon.v1` (with source info), for
/// reflection and canonical JSON rendering.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/arqon_v1_descriptor.bin"));
