//! Pages rendered by the server (HTML with maud, which escapes every
//! interpolated value) and their assets, which ship inside the binary.

pub(crate) mod status;
