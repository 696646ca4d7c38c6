//! Collateral sources and the cache: a local PCCS (API v4) started by the test serves
//! the real vectors of `testdata/dcap`, and the cache's refresh / stale rules are
//! exercised with a source that can be switched off.
#![cfg(feature = "server")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../dcap/tests/common/mod.rs"]
mod common;

use attestation_service::config::{CollateralConfig, OnRefreshFailure};
use attestation_service::source::{
    CollateralCache, CollateralKey, CollateralSource, NotOlder, PckCa, PcsClient, SimSource,
    SourceError, SourceFuture,
};
use attestation_service::store::Store;
use attestation_service::{Collateral, TeeType, TrustAnchors, Verifier};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimTee};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake PCCS serves: raw response bodies and issuer-chain headers.
#[derive(Clone)]
struct Pccs {
    tee: &'static str,
    tcb_info: Vec<u8>,
    tcb_chain: Vec<u8>,
    qe_identity: Vec<u8>,
    qe_chain: Vec<u8>,
    pck_crl: Vec<u8>,
    pck_chain: Vec<u8>,
    root_crl: Vec<u8>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Pccs {
    /// Serves a bundle as a PCCS would (signed bodies re-wrapped byte-exact).
    fn from_bundle(tee: &'static str, c: &Collateral) -> Self {
        let wrap = |field: &str, body: &str, sig: &[u8]| {
            format!(
                "{{\"{field}\":{body},\"signature\":\"{}\"}}",
                hex::encode(sig)
            )
            .into_bytes()
        };
        Self {
            tee,
            tcb_info: wrap("tcbInfo", &c.tcb_info, &c.tcb_info_signature),
            tcb_chain: c.tcb_info_issuer_chain.clone(),
            qe_identity: wrap("enclaveIdentity", &c.qe_identity, &c.qe_identity_signature),
            qe_chain: c.qe_identity_issuer_chain.clone(),
            pck_crl: c.pck_crl.clone(),
            pck_chain: c.pck_crl_issuer_chain.clone(),
            // PCCS serves the root CRL hex-encoded.
            root_crl: hex::encode(&c.root_ca_crl).into_bytes(),
            seen: Arc::default(),
        }
    }

    async fn start(self) -> String {
        /// A body with its issuer-chain header, URL-encoded as Intel's PCS sends it.
        fn answer(name: &'static str, chain: &[u8], body: Vec<u8>) -> (HeaderMap, Vec<u8>) {
            let value = percent_encoding::utf8_percent_encode(
                &String::from_utf8_lossy(chain),
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string();
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            (h, body)
        }
        async fn tcb(
            State(p): State<Pccs>,
            Query(q): Query<HashMap<String, String>>,
        ) -> (HeaderMap, Vec<u8>) {
            p.seen.lock().unwrap().push(format!("tcb {}", q["fmspc"]));
            answer("TCB-Info-Issuer-Chain", &p.tcb_chain, p.tcb_info)
        }
        async fn qe(State(p): State<Pccs>) -> (HeaderMap, Vec<u8>) {
            answer(
                "SGX-Enclave-Identity-Issuer-Chain",
                &p.qe_chain,
                p.qe_identity,
            )
        }
        async fn crl(
            State(p): State<Pccs>,
            Query(q): Query<HashMap<String, String>>,
        ) -> (HeaderMap, Vec<u8>) {
            p.seen.lock().unwrap().push(format!("pckcrl {}", q["ca"]));
            answer("SGX-PCK-CRL-Issuer-Chain", &p.pck_chain, p.pck_crl)
        }
        let tee = self.tee;
        let app = axum::Router::new()
            .route(&format!("/{tee}/certification/v4/tcb"), get(tcb))
            .route(&format!("/{tee}/certification/v4/qe/identity"), get(qe))
            .route("/sgx/certification/v4/pckcrl", get(crl))
            .route(
                "/sgx/certification/v4/rootcacrl",
                get(|State(p): State<Pccs>| async move { p.root_crl }),
            )
            .fallback(|| async { StatusCode::NOT_FOUND })
            .with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }
}

fn cache(
    dir: &std::path::Path,
    anchors: TrustAnchors,
    source: Option<Arc<dyn CollateralSource>>,
    config: CollateralConfig,
) -> CollateralCache {
    CollateralCache::new(
        Arc::new(Store::open(dir).unwrap()),
        Arc::new(Verifier::new(anchors)),
        source.map(|s| (s, "test")),
        config,
    )
}

#[tokio::test]
async fn a_local_pccs_serves_the_real_vectors() {
    let vectors = common::vectors();
    let mut checked = 0;
    for v in vectors
        .iter()
        .filter(|v| v.name.starts_with("phala_") && !v.name.contains("tappd"))
    {
        let key = CollateralKey::of_quote(&v.quote).unwrap();
        let tee = match key.tee {
            TeeType::Sgx => "sgx",
            TeeType::Tdx => "tdx",
        };
        let pccs = Pccs::from_bundle(tee, &v.collateral);
        let seen = pccs.seen.clone();
        let url = pccs.start().await;
        let dir = tempfile::tempdir().unwrap();
        let client = PcsClient::new(&url, None, Duration::from_secs(5)).unwrap();
        let c = cache(
            dir.path(),
            TrustAnchors::intel(),
            Some(Arc::new(client)),
            CollateralConfig::default(),
        );
        let resolved = c
            .get(key, v.now)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(resolved.verify_at, v.now);
        let outcome =
            Verifier::new(TrustAnchors::intel()).verify(&v.quote, &resolved.collateral, v.now);
        match v.expected.strip_prefix("ERROR:") {
            None => assert_eq!(outcome.unwrap().status.as_str(), v.expected, "{}", v.name),
            Some(_) => assert!(outcome.is_err(), "{}", v.name),
        }
        // The requests named the quote's FMSPC and its PCK CA.
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen.contains(&format!("tcb {}", hex::encode_upper(key.fmspc))),
            "{seen:?}"
        );
        assert!(
            seen.contains(&format!("pckcrl {}", key.ca.as_str())),
            "{seen:?}"
        );
        // Cached now: a second get does not ask the PCCS again.
        c.get(key, v.now).await.unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(c.status(v.now).unwrap().len(), 1);
        checked += 1;
    }
    assert!(checked >= 3);

    // Google's raw PCCS responses, served as they were captured.
    let g = &vectors
        .iter()
        .find(|v| v.name.starts_with("google"))
        .unwrap();
    let raw = |f: &str| common::read(&format!("google/{f}"));
    let pccs = Pccs {
        tee: "tdx",
        tcb_info: raw("sample_tcbInfo_response"),
        tcb_chain: raw("tcbInfoIssuerChain.pem"),
        qe_identity: raw("sample_qeIdentity_response"),
        qe_chain: raw("qeIdentityIssuerChain.pem"),
        pck_crl: raw("pckcrl"),
        pck_chain: raw("pckCrlIssuerChain.pem"),
        root_crl: raw("rootcrl.der"),
        seen: Arc::default(),
    };
    let url = pccs.start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = PcsClient::new(&url, None, Duration::from_secs(5)).unwrap();
    let c = cache(
        dir.path(),
        TrustAnchors::intel(),
        Some(Arc::new(client)),
        CollateralConfig::default(),
    );
    let key = CollateralKey::of_quote(&g.quote).unwrap();
    assert_eq!((key.tee, key.ca), (TeeType::Tdx, PckCa::Platform));
    let resolved = c.get(key, g.now).await.unwrap();
    assert_eq!(*resolved.collateral, g.collateral);
}

#[tokio::test]
async fn pccs_failures_are_named_and_nothing_is_cached() {
    let v = common::vectors()
        .into_iter()
        .find(|v| v.name == "phala_sgx_v3")
        .unwrap();
    let key = CollateralKey::of_quote(&v.quote).unwrap();
    // Nothing listening.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let client = PcsClient::new(&dead, None, Duration::from_secs(2)).unwrap();
    let c = cache(
        dir.path(),
        TrustAnchors::intel(),
        Some(Arc::new(client)),
        CollateralConfig::default(),
    );
    assert!(matches!(
        c.get(key, v.now).await,
        Err(SourceError::Unavailable(_))
    ));
    // A PCCS whose TCB Info signature is broken: invalid, not stored.
    let mut pccs = Pccs::from_bundle("sgx", &v.collateral);
    let last = pccs.tcb_info.len() - 3;
    pccs.tcb_info[last] ^= 1; // inside the hex signature
    let url = pccs.start().await;
    let client = PcsClient::new(&url, None, Duration::from_secs(5)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = cache(
        dir.path(),
        TrustAnchors::intel(),
        Some(Arc::new(client)),
        CollateralConfig::default(),
    );
    let err = c.get(key, v.now).await.unwrap_err();
    assert!(matches!(err, SourceError::Invalid(_)), "{err:?}");
    assert!(c.status(v.now).unwrap().is_empty());
    // An oversized answer is refused while it streams in, before any parsing.
    let mut huge = Pccs::from_bundle("sgx", &v.collateral);
    huge.tcb_info = vec![b' '; attestation_service::collateral::MAX_COLLATERAL_SIZE + 1];
    let url = huge.start().await;
    let client = PcsClient::new(&url, None, Duration::from_secs(5)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = cache(
        dir.path(),
        TrustAnchors::intel(),
        Some(Arc::new(client)),
        CollateralConfig::default(),
    );
    let err = c.get(key, v.now).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Unavailable(m) if m.contains("too large")),
        "{err:?}"
    );
    // Without any source, an uncached platform is named.
    let dir = tempfile::tempdir().unwrap();
    let c = cache(
        dir.path(),
        TrustAnchors::intel(),
        None,
        CollateralConfig::default(),
    );
    assert!(matches!(
        c.get(key, v.now).await,
        Err(SourceError::NotCached(_))
    ));
}

/// The simulated PKI as a source that can be switched off and counts fetches.
#[derive(Debug)]
struct Flaky {
    sim: SimSource,
    up: AtomicBool,
    fetches: AtomicUsize,
}

impl CollateralSource for Flaky {
    fn fetch(&self, key: CollateralKey, now: i64) -> SourceFuture<'_> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.up.load(Ordering::SeqCst) {
            self.sim.fetch(key, now)
        } else {
            Box::pin(std::future::ready(Err(SourceError::Unavailable(
                "switched off".into(),
            ))))
        }
    }
}

#[tokio::test]
async fn refresh_before_next_update_and_the_stale_knob() {
    const T0: i64 = 1_760_000_000;
    let sim = SimTee::generate(SimConfig::up_to_date(T0 - 3600)).unwrap();
    let anchors = sim.trust_anchors();
    let quote = sim.sgx_quote(&SgxEnclave::default(), &[0; 64]).unwrap();
    let key = CollateralKey::of_quote(&quote).unwrap();
    let flaky = Arc::new(Flaky {
        sim: SimSource(Mutex::new(sim)),
        up: AtomicBool::new(true),
        fetches: AtomicUsize::new(0),
    });
    let day = 86_400;
    let make = |dir: &std::path::Path, knob| {
        cache(
            dir,
            anchors.clone(),
            Some(flaky.clone() as Arc<dyn CollateralSource>),
            CollateralConfig {
                refresh_before_secs: day as u32,
                on_refresh_failure: knob,
                max_stale_secs: 2 * day as u32,
                ..CollateralConfig::default()
            },
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let c = make(dir.path(), OnRefreshFailure::Refuse);
    let first = c.get(key, T0).await.unwrap();
    assert_eq!(flaky.fetches.load(Ordering::SeqCst), 1);
    let next_update = c.status(T0).unwrap()[0].next_update;
    assert_eq!(next_update, T0 - 3600 + 30 * day);
    // Fresh: served from the store.
    c.get(key, next_update - day - 1).await.unwrap();
    assert_eq!(flaky.fetches.load(Ordering::SeqCst), 1);
    // Due: refreshed.
    let due = next_update - day + 1;
    let refreshed = c.get(key, due).await.unwrap();
    assert_eq!(flaky.fetches.load(Ordering::SeqCst), 2);
    assert_ne!(refreshed.collateral, first.collateral);
    let next_update = c.status(due).unwrap()[0].next_update;
    // Due, source down: the still-valid entry is served as it is.
    flaky.up.store(false, Ordering::SeqCst);
    let r = c.get(key, next_update - 10).await.unwrap();
    assert_eq!((r.verify_at, r.stale), (next_update - 10, None));
    // Expired, source down, `refuse`.
    let err = c.get(key, next_update + 10).await.unwrap_err();
    assert!(matches!(err, SourceError::Expired { .. }), "{err:?}");
    // `serve_stale`: within the bound, verified at next_update with a warning; beyond, refused.
    drop(c); // release the store's lock
    let c = make(dir.path(), OnRefreshFailure::ServeStale);
    let r = c.get(key, next_update + 10).await.unwrap();
    assert_eq!(r.verify_at, next_update);
    assert_eq!(r.stale.unwrap().stale_secs, 10);
    let v = Verifier::new(anchors.clone()).verify(&quote, &r.collateral, r.verify_at);
    assert!(v.is_ok(), "{v:?}");
    assert!(c.get(key, next_update + 2 * day + 1).await.is_err());
    // The background refresh brings it back once the source is up.
    flaky.up.store(true, Ordering::SeqCst);
    let (done, failed) = c.refresh_due(next_update + 10).await.unwrap();
    assert_eq!((done, failed.len()), (1, 0));
    assert!(c.get(key, next_update + 10).await.unwrap().stale.is_none());
}

/// M1: the cache never replaces collateral with older collateral (a TCB recovery or a
/// revocation undone by last month's TCB Info or CRL), and a caller may not supply
/// collateral older than what the cache holds.
#[tokio::test]
async fn attack_m1_older_collateral_never_replaces_or_overrides_newer() {
    const T0: i64 = 1_760_000_000;
    let day = 86_400;
    let mut sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let anchors = sim.trust_anchors();
    let quote = sim.sgx_quote(&SgxEnclave::default(), &[0; 64]).unwrap();
    let key = CollateralKey::of_quote(&quote).unwrap();
    let old = sim.collateral(TeeType::Sgx).unwrap();
    sim.config_mut().valid_from = T0 + day;
    let new = sim.collateral(TeeType::Sgx).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = cache(dir.path(), anchors, None, CollateralConfig::default());
    c.insert(key, &old, "test", T0 + 10).unwrap();
    c.insert(key, &new, "test", T0 + day + 10).unwrap();
    let err = c.insert(key, &old, "test", T0 + day + 20).unwrap_err();
    assert!(
        matches!(err, attestation_service::Error::CollateralRollback { .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "collateral_rollback");
    // The newer entry stayed.
    let held = c.get(key, T0 + day + 30).await.unwrap();
    assert_eq!(*held.collateral, new);
    // Caller-supplied collateral: the older one is refused, the held one accepted.
    assert!(
        c.check_not_older(&quote, &old, T0 + day + 30)
            .await
            .is_err()
    );
    c.check_not_older(&quote, &new, T0 + day + 30)
        .await
        .unwrap();
}

/// NM5: a fresh replica (nothing cached: a restart, a new HPA replica on `emptyDir`)
/// asks its source before it takes caller collateral, and refuses collateral older than
/// what the source serves; only without a source is the caller's taken as is.
#[tokio::test]
async fn attack_nm5_an_empty_cache_asks_the_source_before_taking_caller_collateral() {
    const T0: i64 = 1_760_000_000;
    let day = 86_400;
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let anchors = sim.trust_anchors();
    let quote = sim.sgx_quote(&SgxEnclave::default(), &[0; 64]).unwrap();
    let old = sim.collateral(TeeType::Sgx).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source: Arc<dyn CollateralSource> = Arc::new(SimSource(Mutex::new(sim)));
    let c = cache(
        dir.path(),
        anchors.clone(),
        Some(source),
        CollateralConfig::default(),
    );
    let err = c.check_not_older(&quote, &old, T0 + day).await.unwrap_err();
    assert!(
        matches!(
            err,
            NotOlder::Evidence(attestation_service::Error::CollateralRollback { .. })
        ),
        "{err:?}"
    );
    // A source that fails leaves nothing to compare with: refused, not waved through.
    let down = tempfile::tempdir().unwrap();
    let flaky = Arc::new(Flaky {
        sim: SimSource(Mutex::new(
            SimTee::generate(SimConfig::up_to_date(T0)).unwrap(),
        )),
        up: AtomicBool::new(false),
        fetches: AtomicUsize::new(0),
    });
    let c = cache(
        down.path(),
        anchors.clone(),
        Some(flaky),
        CollateralConfig::default(),
    );
    let err = c.check_not_older(&quote, &old, T0 + day).await.unwrap_err();
    assert!(matches!(err, NotOlder::Source(_)), "{err:?}");
    let offline = tempfile::tempdir().unwrap();
    let c = cache(offline.path(), anchors, None, CollateralConfig::default());
    c.check_not_older(&quote, &old, T0 + day).await.unwrap();
}

/// L1: a quote whose PCK chain does not verify to the trust anchors names no
/// collateral (nothing is fetched for it), and a failed fetch is not repeated for a
/// while, whoever asks.
#[tokio::test]
async fn attack_l1_unverified_platforms_and_repeated_misses_cost_no_fetches() {
    const T0: i64 = 1_760_000_000;
    let sim = SimTee::generate(SimConfig::up_to_date(T0 - 3600)).unwrap();
    let anchors = sim.trust_anchors();
    let quote = sim.sgx_quote(&SgxEnclave::default(), &[0; 64]).unwrap();
    let flaky = Arc::new(Flaky {
        sim: SimSource(Mutex::new(sim)),
        up: AtomicBool::new(false),
        fetches: AtomicUsize::new(0),
    });
    let dir = tempfile::tempdir().unwrap();
    let c = cache(
        dir.path(),
        anchors,
        Some(flaky.clone() as Arc<dyn CollateralSource>),
        CollateralConfig::default(),
    );
    // Another PKI's platform: refused before any lookup.
    let stranger = SimTee::generate(SimConfig::up_to_date(T0 - 3600)).unwrap();
    let foreign = stranger
        .sgx_quote(&SgxEnclave::default(), &[0; 64])
        .unwrap();
    assert!(c.key_of(&foreign).is_err());
    // A genuine platform while the source is down: one fetch, then the miss is
    // remembered.
    let key = c.key_of(&quote).unwrap();
    assert!(c.get(key, T0).await.is_err());
    assert!(c.get(key, T0 + 1).await.is_err());
    assert_eq!(flaky.fetches.load(Ordering::SeqCst), 1);
    // After the negative-cache window, the source is asked again.
    flaky.up.store(true, Ordering::SeqCst);
    c.get(
        key,
        T0 + attestation_service::source::NEGATIVE_CACHE_SECS + 1,
    )
    .await
    .unwrap();
    assert_eq!(flaky.fetches.load(Ordering::SeqCst), 2);
}
