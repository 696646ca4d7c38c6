//! The gRPC services on a real socket (127.0.0.1:0) with a shutdown channel: the
//! attestation round trip, errors mapped from the same enum as REST, admin metadata,
//! size bounds, health and reflection.
#![cfg(feature = "server")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use attestation_service::{TeeType, grpc};
use pb::verify_quote_response::Verdict;
use phalanx_proto::attestation::v1 as pb;
use support::*;
use tonic::Code;

type Client = pb::attestation_service_client::AttestationServiceClient<tonic::transport::Channel>;

fn admin<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    r
}

fn error_code(s: &tonic::Status) -> &str {
    s.metadata()
        .get("x-phalanx-error")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn attests_over_grpc_with_the_rest_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, sim) = open(config(dir.path()));
    let limits = a.config.limits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = a.service.clone();
    let server = tokio::spawn(async move {
        grpc::serve(listener, service, &limits, async {
            let _ = stopped.await;
        })
        .await
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = Client::new(channel.clone());

    // Nonce → attest → token, checked with the JWKS only.
    let nonce = client
        .get_nonce(pb::GetNonceRequest {})
        .await
        .unwrap()
        .into_inner()
        .nonce;
    let quote = quote_for(&sim, &nonce, b"keys");
    let request = pb::AttestRequest {
        tee: pb::Tee::Sgx as i32,
        quote: quote.clone(),
        collateral: None,
        runtime_data: b"keys".to_vec(),
        nonce: nonce.clone(),
        policy: "app".into(),
    };
    let out = client.attest(request.clone()).await.unwrap().into_inner();
    assert_eq!(out.status, "affirming");
    let jwks: serde_json::Value = serde_json::from_str(
        &client
            .get_jwks(pb::GetJwksRequest {})
            .await
            .unwrap()
            .into_inner()
            .jwks_json,
    )
    .unwrap();
    assert_eq!(check_token(&out.token, &jwks)["ear.status"], "affirming");

    // Failures carry the REST error codes.
    let err = client.attest(request.clone()).await.unwrap_err();
    assert_eq!(
        (err.code(), error_code(&err)),
        (Code::Unauthenticated, "bad_nonce")
    );
    let mut unknown = request.clone();
    unknown.policy = "nope".into();
    let err = client.attest(unknown).await.unwrap_err();
    assert_eq!(
        (err.code(), error_code(&err)),
        (Code::NotFound, "unknown_policy")
    );
    assert!(err.message().starts_with("unknown_policy: "));
    let fresh = client
        .get_nonce(pb::GetNonceRequest {})
        .await
        .unwrap()
        .into_inner()
        .nonce;
    let mut damaged = request.clone();
    damaged.nonce = fresh;
    damaged.quote[100] ^= 1;
    let err = client.attest(damaged).await.unwrap_err();
    assert_eq!(
        (err.code(), error_code(&err)),
        (Code::InvalidArgument, "quote_signature_invalid")
    );

    // VerifyQuote: a damaged quote is a typed rejection, not a transport error.
    let collateral = grpc::collateral_to_pb(sim.collateral(TeeType::Sgx).unwrap());
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
    let resp = client
        .verify_quote(pb::VerifyQuoteRequest {
            quote: quote.clone(),
            collateral: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(resp.verdict, Some(Verdict::Verified(v)) if v.status == "UpToDate"));

    // Admin calls need the bearer secret.
    let err = client
        .list_policies(pb::ListPoliciesRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), error_code(&err)),
        (Code::Unauthenticated, "unauthorized")
    );
    let list = client
        .list_policies(admin(pb::ListPoliciesRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.policies_json.len(), 1);
    let p2 = serde_json::to_string(
        &attestation_service::policy::Policy::from_toml(&policy_toml("app", 2)).unwrap(),
    )
    .unwrap();
    client
        .put_policy(admin(pb::PutPolicyRequest {
            policy_json: p2.clone(),
        }))
        .await
        .unwrap();
    let err = client
        .put_policy(admin(pb::PutPolicyRequest { policy_json: p2 }))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), error_code(&err)),
        (Code::FailedPrecondition, "policy_version_conflict")
    );
    let err = client
        .put_policy(admin(pb::PutPolicyRequest {
            policy_json: "{".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), error_code(&err)),
        (Code::InvalidArgument, "bad_policy")
    );
    let imported = client
        .import_collateral(admin(pb::ImportCollateralRequest {
            collateral: Some(collateral),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.entry.unwrap().origin, "import");
    let status = client
        .collateral_status(pb::CollateralStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.entries.len(), 1);
    let kid = client
        .rotate_signing_key(admin(pb::RotateSigningKeyRequest {}))
        .await
        .unwrap()
        .into_inner()
        .kid;
    assert_eq!(kid.len(), 43);

    // Oversized requests are refused before decoding.
    let err = client
        .verify_quote(pb::VerifyQuoteRequest {
            quote: vec![0; a.config.limits.max_body_bytes + 1],
            collateral: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");

    // Standard health and reflection services.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "phalanx.attestation.v1.AttestationService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    use tonic_reflection::pb::v1 as refl;
    let channel_alpha = channel.clone();
    let mut reflection = refl::server_reflection_client::ServerReflectionClient::new(channel);
    let mut answers = reflection
        .server_reflection_info(tokio_stream_once(refl::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                refl::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        }))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(refl::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("{answer:?}")
    };
    let mut names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    // Exactly what this server serves: no keyvault or chain services.
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "phalanx.attestation.v1.AttestationService"
        ],
    );
    // The older v1alpha protocol answers too.
    use tonic_reflection::pb::v1alpha as alpha;
    let mut old = alpha::server_reflection_client::ServerReflectionClient::new(channel_alpha);
    let mut answers = old
        .server_reflection_info(tokio_stream_once(alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        }))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("{answer:?}")
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "phalanx.attestation.v1.AttestationService"),
        "{list:?}"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// A one-message request stream.
fn tokio_stream_once<T: Send + 'static>(
    item: T,
) -> impl tonic::codegen::tokio_stream::Stream<Item = T> + Send + 'static {
    tonic::codegen::tokio_stream::iter(vec![item])
}
