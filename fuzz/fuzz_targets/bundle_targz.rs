//! Bundle reading: gzip and tar with their limits, entry names (`..`, absolute paths, links),
//! the manifest, data documents and module names. Any input must end in a bundle or an
//! error, within the size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerohop_filter::bundle::{archive, Bundle, Limits, RegoVersion};

#[global_allocator]
static ALLOCATOR: zerohop_filter::engine::budget::CountingAllocator<std::alloc::System> =
    zerohop_filter::engine::budget::CountingAllocator(std::alloc::System);

// Small enough that a decompression bomb costs little, large enough for real seed bundles.
const LIMITS: Limits = Limits {
    max_uncompressed_bytes: 1 << 20,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(files) = archive::read_targz(data, &LIMITS) {
        let total: usize = files
            .iter()
            .map(|(path, content)| path.len() + content.len())
            .sum();
        assert!(
            total as u64 <= LIMITS.max_uncompressed_bytes,
            "{total} bytes read past the limit"
        );
        for (path, _) in &files {
            assert!(
                !path.split('/').any(|part| part == ".." || part == "."),
                "entry name kept a relative part: {path:?}"
            );
            assert!(
                !path.starts_with('/'),
                "entry name kept a leading slash: {path:?}"
            );
        }
    }
    let _ = Bundle::from_targz_as(data, &LIMITS, RegoVersion::V0);
});
