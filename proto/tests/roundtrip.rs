//! The generated messages encode and decode (a golden check of the wire bytes).
#![allow(clippy::unwrap_used)]

use phalanx_proto::attestation::v1::{
    Rejection, VerifyQuoteResponse, verify_quote_response::Verdict,
};
use prost::Message;

#[test]
fn response_roundtrip_and_golden_bytes() {
    let r = VerifyQuoteResponse {
        verdict: Some(Verdict::Rejected(Rejection {
            code: "x".into(),
            step: "y".into(),
            message: String::new(),
        })),
    };
    let bytes = r.encode_to_vec();
    // field 2 (rejected), length 6: field 1 "x", field 2 "y".
    assert_eq!(bytes, [0x12, 0x06, 0x0a, 0x01, b'x', 0x12, 0x01, b'y']);
    assert_eq!(VerifyQuoteResponse::decode(bytes.as_slice()).unwrap(), r);
    assert!(VerifyQuoteResponse::decode(&[0x12, 0x09, 0x0a][..]).is_err());
}
