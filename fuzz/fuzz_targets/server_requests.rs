//! The server's request handling on arbitrary bytes: frames of (method, protobuf body)
//! decoded as etcd requests and handled by the real services over one in-memory engine
//! (see `lessor_server::fuzz` for the input layout and what must hold).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lessor_server::fuzz::requests(data);
});
