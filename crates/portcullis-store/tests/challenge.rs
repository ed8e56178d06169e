//! Auth sessions and authorization codes (migration 13), on SQLite and
//! PostgreSQL: tries counted before they are answered, an auth session
//! turns into one code, a code is used once and a replay is recorded,
//! expiry and purge, and both need their user and client.

use portcullis_store::on_both_backends;
use portcullis_store::*;

const NOW: UnixTime = UnixTime(1_800_000_000);

async fn setup(s: &SqlStore) -> ChallengeGrant {
    let new = NewUser {
        username: portcullis_domain::Username::parse("alice").expect("username"),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        scope: portcullis_domain::Scopes::empty(),
        email: None,
        email_verified: false,
    };
    let alice = s.create_user(&new, NOW).await.expect("create user");
    let app = NewClient {
        id: portcullis_domain::ClientId::parse("app").expect("client id"),
        name: "App".into(),
        secret_hash: None,
        grant_types: portcullis_domain::GrantTypes::parse("authorization_code").expect("grant types"),
        scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        default_scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::default(),
        allow_sign_up: false,
        sign_up_scope: portcullis_domain::Scopes::empty(),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: true,
        mfa_required: false,
    };
    s.create_client(&app, NOW).await.expect("client");
    ChallengeGrant {
        client_id: "app".into(),
        user_id: alice.id,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: "read".into(),
        amr: "pwd".into(),
        sessions_epoch: 0,
        dpop_jkt: Some("jkt".into()),
    }
}

fn session(grant: &ChallengeGrant, tag: u8) -> AuthSession {
    AuthSession {
        hash: TokenHash([tag; 32]),
        grant: grant.clone(),
        account_key: "alice".into(),
        attempts: 0,
        expires_at: NOW.plus(300),
    }
}

async fn an_auth_session_counts_its_tries_and_turns_into_one_code(db: &testing::TestDb) {
    let grant = setup(db).await;
    let s = session(&grant, 1);
    db.put_auth_session(&s, NOW).await.expect("put");
    assert_eq!(db.auth_session(&s.hash, NOW).await.expect("read"), Some(s.clone()));
    for n in 1..=3 {
        assert_eq!(db.try_auth_session(&s.hash, 3, NOW).await.expect("try"), Some(n));
    }
    assert_eq!(
        db.try_auth_session(&s.hash, 3, NOW).await.expect("try"),
        None,
        "out of tries"
    );

    let s = session(&grant, 2);
    db.put_auth_session(&s, NOW).await.expect("put");
    let code = AuthorizationCode {
        hash: TokenHash([9; 32]),
        grant: ChallengeGrant {
            amr: "pwd otp mfa".into(),
            ..grant.clone()
        },
    };
    assert!(
        db.exchange_auth_session(&s.hash, &code, NOW.plus(60), NOW)
            .await
            .expect("exchange")
    );
    let other = AuthorizationCode {
        hash: TokenHash([8; 32]),
        grant: grant.clone(),
    };
    assert!(
        !db.exchange_auth_session(&s.hash, &other, NOW.plus(60), NOW)
            .await
            .expect("again"),
        "one code per auth session"
    );
    assert_eq!(db.auth_session(&s.hash, NOW).await.expect("read"), None);
    assert_eq!(
        db.use_authorization_code(&other.hash, NOW).await.expect("use"),
        CodeUse::Unknown
    );
    assert_eq!(
        db.use_authorization_code(&code.hash, NOW).await.expect("use"),
        CodeUse::Used(code.clone())
    );
}

async fn a_code_is_used_once_and_a_replay_is_recorded(db: &testing::TestDb) {
    let grant = setup(db).await;
    let code = AuthorizationCode {
        hash: TokenHash([3; 32]),
        grant,
    };
    db.put_authorization_code(&code, NOW.plus(60), NOW).await.expect("put");
    assert_eq!(
        db.use_authorization_code(&code.hash, NOW).await.expect("use"),
        CodeUse::Used(code.clone())
    );
    // A replay before the first use recorded its family...
    assert_eq!(
        db.use_authorization_code(&code.hash, NOW).await.expect("replay"),
        CodeUse::Replayed { family_id: None }
    );
    // ...is seen by the first use when it records it.
    assert!(db.set_code_family(&code.hash, "family-1").await.expect("set"));
    assert_eq!(
        db.use_authorization_code(&code.hash, NOW.plus(120))
            .await
            .expect("late replay"),
        CodeUse::Replayed {
            family_id: Some("family-1".into())
        }
    );
}

async fn codes_and_sessions_expire_and_are_purged(db: &testing::TestDb) {
    let grant = setup(db).await;
    let s = session(&grant, 1);
    db.put_auth_session(&s, NOW).await.expect("put");
    let code = AuthorizationCode {
        hash: TokenHash([4; 32]),
        grant: grant.clone(),
    };
    db.put_authorization_code(&code, NOW.plus(60), NOW).await.expect("put");
    let later = NOW.plus(300);
    assert_eq!(db.auth_session(&s.hash, later).await.expect("read"), None);
    assert_eq!(db.try_auth_session(&s.hash, 5, later).await.expect("try"), None);
    assert_eq!(
        db.use_authorization_code(&code.hash, later).await.expect("use"),
        CodeUse::Unknown
    );
    assert_eq!(
        db.purge_challenges(later, NOW).await.expect("purge"),
        1,
        "the session only"
    );
    assert_eq!(
        db.purge_challenges(later, later).await.expect("purge"),
        1,
        "then the code"
    );

    let no_user = AuthSession {
        grant: ChallengeGrant {
            user_id: "nobody".into(),
            ..grant.clone()
        },
        ..session(&grant, 5)
    };
    assert_eq!(db.put_auth_session(&no_user, NOW).await, Err(StoreError::NotFound));
    let no_client = AuthorizationCode {
        hash: TokenHash([6; 32]),
        grant: ChallengeGrant {
            client_id: "nobody".into(),
            ..grant
        },
    };
    assert_eq!(
        db.put_authorization_code(&no_client, NOW.plus(60), NOW).await,
        Err(StoreError::NotFound)
    );
}

on_both_backends!(
    an_auth_session_counts_its_tries_and_turns_into_one_code,
    a_code_is_used_once_and_a_replay_is_recorded,
    codes_and_sessions_expire_and_are_purged,
);
