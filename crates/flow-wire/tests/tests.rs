//! flow-wire at its boundary: datagrams built by hand in `builder`,
//! decoded through `Decoder::decode`, checked field by field.

mod builder;
mod cases;
