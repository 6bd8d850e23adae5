use super::*;

const SLUSH_NOTIFY: &str = r#"{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}"#;

fn no_requests(_: &Id) -> Option<Method> {
    None
}

fn server(line: &str) -> ServerMessage {
    ServerMessage::parse(line, no_requests).unwrap()
}

/// slush's documented notify (Braiins' Stratum v1 docs) reads and writes back the same params.
#[test]
fn slush_notify_parses_and_round_trips() {
    let ServerMessage::Notify(job) = server(SLUSH_NOTIFY) else { panic!() };
    assert_eq!((job.id.to_string().as_str(), job.version, job.time, job.clean), ("bf", 2, 0x504e86b9, false));
    let line = ServerMessage::Notify(job.clone()).to_line();
    assert_eq!(server(&line), ServerMessage::Notify(job));
    let original: Value = serde_json::from_str(SLUSH_NOTIFY).unwrap();
    let written: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(written["params"], original["params"]);
}

/// Block 881,423 was mined through a Stratum pool with version rolling (its version is
/// 0x2e596000: base 0x20000000 plus rolled bits 0x0e596000 under mask 0x1fffe000). The job's
/// parts (coinb1/coinb2 split, extranonces, merkle branch) are those recorded in
/// 256foundation/mujina, mujina-miner/src/job_source/test_blocks.rs, with the coinbase in
/// the non-witness form pools send; the header and hash are the chain's.
#[test]
fn version_rolled_share_of_block_881423() {
    let branch = [
        "4282357ab0a2f4e8e562c8c5eae1d63b559068f9072374b72e26b88ac841908f",
        "c2bbae90d06f8025ade3516ca2e42d79318b6e56fccb9609df85a654a8341068",
        "cbb30084acbcb5ce6d5436e853bc612466df0c00702be6f51d47072f1a5d0480",
        "bb092e533f70b79246fc9e4bdc9b81ac8332e56f2651e3b237a150d6d807b081",
        "0d32959988733447cb340326a1fe4d3c2cff5d636e32a4e08c3fc5a234f6f6bc",
        "8ba3477940924a90067cff3dd30bc46916cf4c2f73fb6229b8f8197b83b6ddb9",
        "3fe97cc5dec1cddd66c9d3780888c145c12418590cd983c4871b1bf03fabbf9e",
        "bd1c6a3bcd0ebaa0eca54d9c802540f312c7705435601d776b4f59bb52cff67d",
        "8638c10190b8f4f558bafdbb57f46226c349a83f229f431143ae75e425fb5cbd",
        "6d6f4eae41cccb21a7c97ac496d9f89b8a4f772389b76f7691519dda38264221",
        "82dad7a1e2613af0e61f77f03d6208c83e72f917dade4235cc35e37ee3ad6e3f",
    ];
    let notify = json!({"id": null, "method": "mining.notify", "params": [
        "1a2b",
        "8a6ac9e3fe15ca70f8995e21434cb64ac4d2b5e10001543b0000000000000000",
        "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff3d030f730d000469c19a67",
        "9a67b6600000000000000a41706f6c6c6f192f6d696e65642062792032353620466f756e646174696f6e2fffffffff0275aac01200000000160014c64b1b9283ba1ea86bb9e7b696b0c8f68dad04000000000000000000266a24aa21a9edb395560ab72068c2afb1d7e6c7db26b813482089d2c4d2471b9036c5e826140600000000",
        branch,
        "20000000",
        "17029a8a",
        "679ac169",
        true
    ]});
    let ServerMessage::Notify(job) = server(&notify.to_string()) else { panic!() };
    let (en1, en2) = (hex_decode("04830cee").unwrap(), hex_decode("220cf1ad").unwrap());
    let mask = 0x1fff_e000;
    let version_bits = 0x0e59_6000;
    let mut header = job.header(&en1, &en2, job.time, (job.version & !mask) | version_bits);
    header.nonce = 0xff05_fb02;
    assert_eq!(
        crate::work::header_bytes(&header).to_lower_hex_string(),
        "0060592ee3c96a8a70ca15fe215e99f84ab64c43e1b5d2c43b540100000000000000000076f63a35f1b8b5016d3eb0cce2eebbdf58bf8fbea4e870c8f770346bdfcf622d69c19a678a9a021702fb05ff"
    );
    assert_eq!(header.block_hash().to_string(), "0000000000000000000269d52c24ea451225613aab095d90d771d4e29aa96cdd");
    let submission = Submission {
        user: "telehash.worker".into(),
        job_id: job.id.to_string(),
        extranonce2: en2,
        time: job.time,
        nonce: header.nonce,
        version_bits: Some(version_bits),
    };
    let line = ClientMessage::Submit { id: Id::Num(7), submission: submission.clone() }.to_line();
    assert_eq!(
        line,
        r#"{"id":7,"method":"mining.submit","params":["telehash.worker","1a2b","220cf1ad","679ac169","ff05fb02","0e596000"]}"#
    );
    // The embedded pool reads back exactly what the miner wrote.
    assert_eq!(ClientMessage::parse(&line).unwrap(), ClientMessage::Submit { id: Id::Num(7), submission });
}

/// BIP310's configure exchange: the request the miner sends, the grant, and a refusal.
#[test]
fn bip310_configure_exchange() {
    let request = ClientMessage::Configure {
        id: Id::Num(1),
        version_rolling: Some(VersionRolling { mask: VersionMask(0x1fff_e000), min_bit_count: 2 }),
    };
    assert_eq!(
        request.to_line(),
        r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]}"#
    );
    assert_eq!(ClientMessage::parse(&request.to_line()).unwrap(), request);
    let configure = |id: &Id| (*id == Id::Num(1)).then_some(Method::Configure);
    let granted = r#"{"error":null,"id":1,"result":{"version-rolling":true,"version-rolling.mask":"18000000"}}"#;
    assert_eq!(
        ServerMessage::parse(granted, configure).unwrap(),
        ServerMessage::Response {
            id: Some(Id::Num(1)),
            reply: Reply::Configured { version_rolling: Some(VersionMask(0x1800_0000)) }
        }
    );
    let refused = r#"{"error":null,"id":1,"result":{"version-rolling":false}}"#;
    assert!(matches!(
        ServerMessage::parse(refused, configure).unwrap(),
        ServerMessage::Response { reply: Reply::Configured { version_rolling: None }, .. }
    ));
    // BIP310: {"params":["00003000"], "id":null, "method": "mining.set_version_mask"}
    let changed = r#"{"params":["00003000"], "id":null, "method": "mining.set_version_mask"}"#;
    assert_eq!(server(changed), ServerMessage::SetVersionMask(VersionMask(0x3000)));
}

#[test]
fn slush_subscribe_result() {
    let line = r#"{"id": 1, "result": [[["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"], ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}"#;
    let subscribe = |_: &Id| Some(Method::Subscribe);
    let ServerMessage::Response { id, reply: Reply::Subscribed { session, extranonce } } =
        ServerMessage::parse(line, subscribe).unwrap()
    else {
        panic!()
    };
    assert_eq!(id, Some(Id::Num(1)));
    assert_eq!(session.as_deref(), Some("ae6812eb4cd7735a302a8a9dd95cf71f"));
    assert_eq!(extranonce, Extranonce { extranonce1: vec![8, 0, 0, 2], extranonce2_size: 4 });
}

/// A response is read by the request it answers: a stray id is untracked, whatever it says.
#[test]
fn responses_are_read_by_their_request() {
    let line = r#"{"id":0,"result":true,"error":null}"#;
    assert!(matches!(server(line), ServerMessage::Response { reply: Reply::Untracked, .. }));
    let authorize = |_: &Id| Some(Method::Authorize);
    assert!(matches!(
        ServerMessage::parse(line, authorize).unwrap(),
        ServerMessage::Response { reply: Reply::Result(true), .. }
    ));
    let null = r#"{"id":3,"result":null,"error":null}"#;
    assert!(matches!(
        ServerMessage::parse(null, authorize).unwrap(),
        ServerMessage::Response { reply: Reply::Error(_), .. }
    ));
}

#[test]
fn errors_in_both_shapes() {
    let submit = |_: &Id| Some(Method::Submit);
    let read = |line: &str| match ServerMessage::parse(line, submit).unwrap() {
        ServerMessage::Response { reply: Reply::Error(e), .. } => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        read(r#"{"id":4,"result":null,"error":[23,"Low difficulty share",null]}"#),
        RpcError::new(23, "Low difficulty share")
    );
    assert_eq!(
        read(r#"{"id":4,"result":null,"error":{"code":21,"message":"Job not found"}}"#),
        RpcError::new(21, "Job not found")
    );
    // A pool's words cannot forge a log line.
    assert_eq!(read(r#"{"id":4,"result":null,"error":[20,"no\nERROR fake",null]}"#).message, r"no\nERROR fake");
}

/// `client.reconnect` as pools send it: with host, port and wait (numbers or strings), or
/// with nothing at all (slush's docs: "reconnect to the same pool").
#[test]
fn reconnect_forms() {
    let read = |params: &str| match server(&format!(r#"{{"id":null,"method":"client.reconnect","params":{params}}}"#)) {
        ServerMessage::Reconnect { redirect, .. } => redirect,
        other => panic!("{other:?}"),
    };
    assert_eq!(read("[]"), Redirect::default());
    assert_eq!(
        read(r#"["pool.example", 3334, 10]"#),
        Redirect { host: Some("pool.example".into()), port: Some(3334), wait: 10 }
    );
    assert_eq!(read(r#"["", "3334", "5"]"#), Redirect { host: None, port: Some(3334), wait: 5 });
    assert!(
        ServerMessage::parse(r#"{"id":null,"method":"client.reconnect","params":["h", 70000]}"#, no_requests).is_err()
    );
}

#[test]
fn garbage_and_wrong_types_are_errors() {
    for line in [
        "",
        "garbage",
        "[1,2]",
        "{}",
        r#"{"method":5}"#,
        "{\"id\":1",
        r#"{"id":-1,"result":true}"#,
        r#"{"id":[1],"result":true}"#,
    ] {
        assert!(ServerMessage::parse(line, no_requests).is_err(), "{line:?}");
        assert!(ClientMessage::parse(line).is_err(), "{line:?}");
    }
    assert!(matches!(ServerMessage::parse(&"x".repeat(MAX_LINE + 1), no_requests), Err(CodecError::TooLong(_))));
    let notify = |params: Value| json!({"id": null, "method": "mining.notify", "params": params}).to_string();
    for params in [json!(null), json!([]), json!(vec!["bf"; 9]), json!([1, 2, 3, 4, 5, 6, 7, 8, 9])] {
        assert!(ServerMessage::parse(&notify(params.clone()), no_requests).is_err(), "{params}");
    }
    let difficulty =
        |params: Value| json!({"id": null, "method": "mining.set_difficulty", "params": params}).to_string();
    for params in [json!([]), json!(["1"]), json!([-1]), json!([0]), json!(null)] {
        assert!(ServerMessage::parse(&difficulty(params.clone()), no_requests).is_err(), "{params}");
    }
    assert_eq!(server(&difficulty(json!([0.001]))), ServerMessage::SetDifficulty(Difficulty::new(0.001).unwrap()));
}

/// The pool side answers a bad submit by its id rather than dropping the miner.
#[test]
fn bad_client_params_keep_the_id() {
    let line = r#"{"id":9,"method":"mining.submit","params":["w","j","zz","00000000","00000000"]}"#;
    assert_eq!(
        ClientMessage::parse(line).unwrap(),
        ClientMessage::Invalid {
            id: Some(Id::Num(9)),
            method: "mining.submit".into(),
            reason: "extranonce2 is not hex".into()
        }
    );
    let text_id = r#"{"id":"a","method":"mining.ping","params":[]}"#;
    assert_eq!(
        ClientMessage::parse(text_id).unwrap(),
        ClientMessage::Other { id: Some(Id::Text("a".into())), method: "mining.ping".into() }
    );
}

/// Property: no line, however mangled, makes either side's parser panic. Mutations of real
/// messages reach deep into the typed readers.
#[test]
fn mangled_lines_never_panic() {
    let seeds = [
        SLUSH_NOTIFY,
        r#"{"id":1,"result":[[["mining.notify","ae"]],"08000002",4],"error":null}"#,
        r#"{"id":null,"method":"mining.set_difficulty","params":[0.5]}"#,
        r#"{"id":7,"method":"mining.submit","params":["telehash.worker","1a2b","220cf1ad","679ac169","ff05fb02","0e596000"]}"#,
        r#"{"id":null,"method":"client.reconnect","params":["pool.example", 3334, 10]}"#,
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let methods = [Method::Configure, Method::Subscribe, Method::Authorize, Method::Submit];
    for _ in 0..20_000 {
        let mut bytes = seeds[(next() % seeds.len() as u64) as usize].as_bytes().to_vec();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[i] = next() as u8,
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, b"[]{}\",:0-e1"[(next() % 11) as usize]),
            }
        }
        let line = String::from_utf8_lossy(&bytes);
        let method = methods[(next() % 4) as usize];
        let _ = ServerMessage::parse(&line, |_| Some(method));
        let _ = ClientMessage::parse(&line);
    }
}
