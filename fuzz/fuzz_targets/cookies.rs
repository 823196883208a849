//! The `Cookie` header parser and the stripping of Portcullis's cookies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::cookies;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    for (name, value) in cookies::pairs(header) {
        assert!(header.contains(name) && header.contains(value));
    }
    let mut kept = String::new();
    cookies::strip_own(header, &mut kept);
    // Nothing of Portcullis's survives the stripping.
    for segment in kept.split(';') {
        assert!(!cookies::is_own(segment.trim().split('=').next().unwrap_or_default()));
    }
});
