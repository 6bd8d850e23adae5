use super::*;

fn config(url: &str) -> PoolConfig {
    PoolConfig {
        url: url.into(),
        user: "u".into(),
        pass: "x".into(),
        journal: PathBuf::from("j"),
        journal_max: DEFAULT_JOURNAL_MAX,
        trust: Trust::default(),
        suggest_difficulty: None,
        channel: ChannelKind::Extended,
    }
}

/// The SV2 specification's URL form, with the authority key of SRI's example configs.
#[test]
fn stratum_v2_urls_carry_the_authority_key() {
    let key = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
    let endpoint = config(&format!("stratum2+tcp://127.0.0.1:34254/{key}")).endpoint().unwrap();
    assert_eq!((endpoint.host.as_str(), endpoint.port, endpoint.tls), ("127.0.0.1", 34254, false));
    assert_eq!(endpoint.authority.unwrap().to_string(), key);
    let missing = config("stratum2+tcp://127.0.0.1:34254").endpoint().unwrap_err();
    assert!(matches!(missing, UrlError::NoKey(_)), "{missing}");
    let wrong = config("stratum2+tcp://127.0.0.1:34254/9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH7").endpoint();
    assert!(matches!(wrong, Err(UrlError::Key(KeyError::Public { .. }))), "{wrong:?}");
}

#[test]
fn urls_name_scheme_host_and_port() {
    let endpoint = |url: &str| config(url).endpoint();
    assert_eq!(
        endpoint("stratum+ssl://pool.example:4443").unwrap(),
        Endpoint { host: "pool.example".into(), port: 4443, tls: true, authority: None }
    );
    assert_eq!(endpoint("[::1]:3333").unwrap().address(), "[::1]:3333");
    assert_eq!(
        endpoint("127.0.0.1:3333").unwrap(),
        Endpoint { host: "127.0.0.1".into(), port: 3333, tls: false, authority: None }
    );
    assert_eq!(endpoint("http://pool:1"), Err(UrlError::Scheme("http".into())));
    assert!(endpoint("http://pool:1").unwrap_err().to_string().contains("not supported"));
    assert!(matches!(endpoint("stratum+tcp://pool"), Err(UrlError::NoHost(_))));
    assert!(matches!(endpoint("stratum+tcp://pool:99999"), Err(UrlError::Port { .. })));
}

/// `scheme://user[.worker][:password]@host:port`, the form other miners take (ethminer's
/// docs/POOL_EXAMPLES_ETH.md: "-P scheme://user[.workername][:password]@hostname:port") and
/// RFC 3986's userinfo: %-escapes decoded, the last `@` before the path ends it.
#[test]
fn a_url_s_user_and_password_are_read_and_never_shown() {
    let url = PoolUrl::parse("stratum+tcp://uu:secret@127.0.0.1:3333").unwrap();
    assert_eq!((url.user.as_deref(), url.pass.as_deref()), (Some("uu"), Some("secret")));
    assert_eq!(url.shown, "stratum+tcp://127.0.0.1:3333");
    assert_eq!(url.endpoint.address(), "127.0.0.1:3333");
    assert!(!format!("{url:?}").contains("secret"));
    let url = PoolUrl::parse("stratum+ssl://bc1q.rig1:p%40ss%3Aw@rd@pool.example:4443").unwrap();
    assert_eq!((url.user.as_deref(), url.pass.as_deref()), (Some("bc1q.rig1"), Some("p@ss:w@rd")));
    assert_eq!((url.shown.as_str(), url.endpoint.tls), ("stratum+ssl://pool.example:4443", true));
    let url = PoolUrl::parse("worker@127.0.0.1:3333").unwrap();
    assert_eq!((url.user.as_deref(), url.pass, url.shown.as_str()), (Some("worker"), None, "127.0.0.1:3333"));
    let key = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
    let url = PoolUrl::parse(&format!("stratum2+tcp://u:secret@127.0.0.1:34254/{key}")).unwrap();
    assert_eq!(url.shown, format!("stratum2+tcp://127.0.0.1:34254/{key}"));
    // Errors name the URL without its password.
    for bad in ["stratum+tcp://u:secret@pool", "stratum+tcp://u:secret@pool:x", "stratum2+tcp://u:secret@pool:1"] {
        let error = PoolUrl::parse(bad).unwrap_err().to_string();
        assert!(!error.contains("secret") && error.contains("pool"), "{error}");
    }
    let error = PoolUrl::parse("stratum+tcp://u:se%zzcret@pool:1").unwrap_err();
    assert_eq!(error, UrlError::Escape("stratum+tcp://pool:1".into()));
}

/// What the command line gave wins; a config built by hand loses the password from its URL
/// too, even when the URL is unusable.
#[test]
fn credentials_move_out_of_the_url() {
    let mut hand = config("stratum+tcp://uu:secret@127.0.0.1:3333");
    (hand.user, hand.pass) = (String::new(), String::new());
    let hand = hand.without_url_credentials();
    assert_eq!(
        (hand.url.as_str(), hand.user.as_str(), hand.pass.as_str()),
        ("stratum+tcp://127.0.0.1:3333", "uu", "secret")
    );
    let given = config("stratum+tcp://uu:secret@127.0.0.1:3333").without_url_credentials();
    assert_eq!((given.user.as_str(), given.pass.as_str()), ("u", "x"));
    let broken = config("stratum+tcp://uu:secret@127.0.0.1:port").without_url_credentials();
    assert_eq!(broken.url, "stratum+tcp://127.0.0.1:port");
}
