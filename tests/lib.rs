//! End-to-end tests of Portcullis: they start the server (in-process on
//! port 0, or the real `portcullis` binary) and talk to it over HTTP on
//! loopback. The tests live in `tests/*.rs`; this library is empty.
