//! The gRPC service on a real socket (127.0.0.1:0), with a shutdown channel.
#![cfg(feature = "server")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use attestation_service::sim::{SgxEnclave, SimConfig, SimTee};
use attestation_service::{TeeType, Verifier, grpc};
use pb::verify_quote_response::Verdict;
use phalanx_proto::attestation::v1 as pb;
use std::sync::Arc;

#[tokio::test]
async fn verifies_over_grpc_and_bounds_requests() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sim = SimTee::generate(SimConfig::up_to_date(now - 3600)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(grpc::serve(
        listener,
        Arc::new(Verifier::new(sim.trust_anchors())),
        async {
            let _ = stopped.await;
        },
    ));
    let mut client =
        pb::attestation_service_client::AttestationServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();

    let quote = sim
        .sgx_quote(
            &SgxEnclave {
                mr_enclave: [9; 32],
                ..SgxEnclave::default()
            },
            &[1; 64],
        )
        .unwrap();
    let collateral = grpc::collateral_to_pb(sim.collateral(TeeType::Sgx).unwrap());
    let resp = client
        .verify_quote(pb::VerifyQuoteRequest {
            quote: quote.clone(),
            collateral: Some(collateral.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    match resp.verdict {
        Some(Verdict::Verified(v)) => {
            assert_eq!(v.status, "UpToDate");
            assert_eq!(v.mr_enclave, vec![9; 32]);
            assert_eq!(v.tee, pb::Tee::Sgx as i32);
        }
        other => panic!("{other:?}"),
    }

    // A damaged quote is a rejection, not a transport error.
    let mut bad = quote.clone();
    bad[60] ^= 1;
    let resp = client
        .verify_quote(pb::VerifyQuoteRequest {
            quote: bad,
            collateral: Some(collateral.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    match resp.verdict {
        Some(Verdict::Rejected(r)) => assert_eq!(
            (r.code.as_str(), r.step.as_str()),
            ("quote_signature_invalid", "quote_signature")
        ),
        other => panic!("{other:?}"),
    }

    // No collateral: invalid argument.
    let err = client
        .verify_quote(pb::VerifyQuoteRequest {
            quote: quote.clone(),
            collateral: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // Oversized requests are refused before decoding.
    let err = client
        .verify_quote(pb::VerifyQuoteRequest {
            quote: vec![0; grpc::MAX_REQUEST_BYTES + 1],
            collateral: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
