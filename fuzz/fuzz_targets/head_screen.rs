//! The gateway's request screen (`head_screen::HeadScreen`) on an arbitrary byte stream.
//!
//! Input layout: byte 0 picks the head limit (16 to 271 bytes, so limits are reached), byte 1
//! the sizes of the pieces the stream is fed in, the rest is the stream.
//! Besides "no panic": feeding in pieces gives what feeding it whole gives; the safe end never
//! decreases nor passes the bytes scanned; a rejection sticks; and the part up to the safe end
//! passes again on its own with the same safe end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linktoken_core::head_screen::HeadScreen;

fuzz_target!(|data: &[u8]| {
    let [limit, pieces, stream @ ..] = data else {
        return;
    };
    let max_head = 16 + usize::from(*limit);
    let mut whole = HeadScreen::new(max_head);
    let whole_result = whole.scan(stream);

    let mut split = HeadScreen::new(max_head);
    let mut result = Ok(());
    let mut scanned = 0;
    let mut last_end = 0;
    let mut size = 1;
    while scanned < stream.len() && result.is_ok() {
        // Piece sizes follow a small cycle chosen by `pieces`, from 1 byte up.
        size = size % (usize::from(*pieces % 31) + 1) + 1;
        let piece = &stream[scanned..stream.len().min(scanned + size)];
        result = split.scan(piece);
        scanned += piece.len();
        assert!(split.safe_end() >= last_end, "the safe end went back");
        assert!(split.safe_end() <= scanned as u64, "past the bytes scanned");
        last_end = split.safe_end();
    }
    assert_eq!(result, whole_result, "pieces and whole disagree");
    assert_eq!(split.safe_end(), whole.safe_end(), "safe ends disagree");
    assert_eq!(split.rejection(), result.err());
    if let Err(why) = whole_result {
        assert_eq!(whole.scan(b"GET / HTTP/1.1\r\n\r\n"), Err(why), "a rejection sticks");
    }

    let safe = whole.safe_end() as usize;
    let mut again = HeadScreen::new(max_head);
    assert_eq!(again.scan(&stream[..safe]), Ok(()), "the safe part passes alone");
    assert_eq!(again.safe_end(), safe as u64);
});
