//! The shared transcript corpus through `smtp-tokio`, over loopback TCP
//! (with real TLS at every `TLS` step), server bytes sent whole and then one
//! byte per packet. Same cases, same expectations as `corpus_blocking.rs`.

use std::sync::Arc;
use std::time::Duration;

use smtp_sansio::Domain;
use smtp_tests::corpus::{self, Action, Case};
use smtp_tests::{ServerOptions, TestServer, certs, corpus_server};
use smtp_tokio::{Client, Error, Options};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn outcome(e: &Error) -> String {
    corpus::driver_outcome(e)
}

fn options(case: &Case) -> Options {
    let mut o = Options::default();
    o.config.timeouts = corpus::scaled_timeouts();
    o.config.pipelining = case.options.pipelining;
    o.config.lmtp = case.options.lmtp;
    o.config.prefer_chunking = case.options.prefer_chunking;
    o.config.local_name = Domain::new(case.options.local_name.as_str()).expect("local name");
    o.tls_config = Some(certs::client_config());
    o
}

/// The body writer's `AsyncWrite` errors wrap the adapter's error; unwrap it
/// so the outcome is the same as through `write_body`.
fn from_io(e: std::io::Error) -> Error {
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(e)) => *e,
        Some(Err(other)) => Error::Io(Arc::new(std::io::Error::other(other))),
        None => Error::Io(Arc::new(std::io::Error::other("no inner error"))),
    }
}

async fn run(
    client: &mut Option<Client>,
    case: &Case,
    addr: std::net::SocketAddr,
    action: &Action,
) -> String {
    let res = |r: Result<String, Error>| r.unwrap_or_else(|e| outcome(&e));
    if let Action::Connect = action {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let host = &case.options.server_name;
        return match Client::with_options(stream, host, options(case), false).await {
            Ok(c) => {
                *client = Some(c);
                "ok".into()
            }
            Err(e) => outcome(&e),
        };
    }
    let Some(c) = client.as_mut() else {
        return "error closed".into();
    };
    match action {
        Action::Connect => unreachable!(),
        Action::Hello(name) => res(c.hello(name).await.map(|()| "ok".into())),
        Action::StartTls => res(c
            .starttls(Some(certs::client_config()))
            .await
            .map(|()| "ok".into())),
        Action::Auth {
            mechanism,
            user,
            secret,
        } => {
            let mut m = corpus::mechanism(mechanism, user, secret, &case.options.server_name);
            res(c.auth(&mut *m).await.map(|()| "ok 235".into()))
        }
        Action::Mail(from, params) => {
            let params = corpus::mail_params(params).expect("params");
            res(c
                .mail_with(from, params)
                .await
                .map(|r| corpus::reply_outcome(&r)))
        }
        Action::Rcpt(to, params) => {
            let params = corpus::rcpt_params(params).expect("params");
            res(c
                .rcpt_with(to, params)
                .await
                .map(|r| corpus::reply_outcome(&r)))
        }
        Action::Data(body) => res(async {
            let mut w = c.data().await?;
            w.write_body(body).await?;
            Ok(corpus::reply_outcome(&w.finish().await?))
        }
        .await),
        Action::Bdat(body) => res(async {
            let mut w = c.bdat().await?;
            // Through the AsyncWrite implementation, as blocking uses io::Write.
            w.write_all(body).await.map_err(from_io)?;
            Ok(corpus::reply_outcome(&w.finish().await?))
        }
        .await),
        Action::Send {
            from,
            to,
            body,
            params,
        } => match corpus::envelope(from, to, params) {
            Ok(env) => match c.send(&env, &body[..]).await {
                Ok(r) => corpus::report_outcome(&r),
                Err(e) => corpus::driver_send_outcome(&e),
            },
            Err(e) => corpus::error_outcome(&e),
        },
        Action::Batch {
            count,
            from,
            to,
            body,
        } => match corpus::envelope(from, to, &[]) {
            Ok(env) => {
                let batch: Vec<(&smtp_sansio::Envelope, &[u8])> =
                    (0..*count).map(|_| (&env, &body[..])).collect();
                let outcomes: Vec<String> = c
                    .send_batch(&batch)
                    .await
                    .into_iter()
                    .map(|r| match r {
                        Ok(report) => corpus::reply_outcome(&report.reply),
                        Err(e) => corpus::driver_send_outcome(&e),
                    })
                    .collect();
                outcomes.join(" / ")
            }
            Err(e) => corpus::error_outcome(&e),
        },
        Action::Verify(a) => res(c.verify(a).await.map(corpus::verify_outcome)),
        Action::Noop => res(c.noop().await.map(|()| "ok 250".into())),
        Action::Reset => res(c.reset().await.map(|()| "ok 250".into())),
        Action::Quit => match client.take() {
            Some(c) => res(c.quit().await.map(|()| "ok 221".into())),
            None => "error closed".into(),
        },
        Action::Extension(name) => match c.extension(name).await {
            Some(v) => format!("value {v}"),
            None => "none".into(),
        },
    }
}

fn run_case(rt: &tokio::runtime::Runtime, case: &Case, bytewise: bool) -> Result<(), String> {
    let opts = ServerOptions {
        io_timeout: Duration::from_secs(10),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(corpus_server::handler(case, bytewise), opts);
    let addr = server.addr();
    let failure = rt.block_on(async {
        let mut client = None;
        for (action, expected) in corpus::actions(case) {
            let got = run(&mut client, case, addr, &action).await;
            if !corpus::outcome_matches(&expected, &got) {
                return Some(format!("{action:?}: expected `{expected}`, got `{got}`"));
            }
        }
        drop(client);
        None
    });
    let transcripts = server.finish();
    if let Some(f) = failure {
        let t: Vec<String> = transcripts.iter().map(|t| t.transcript_text()).collect();
        return Err(format!("{f}\n{}", t.join("\n")));
    }
    for t in &transcripts {
        if !t.is_ok() {
            return Err(format!("server saw a failure:\n{}", t.transcript_text()));
        }
    }
    Ok(())
}

fn run_all(bytewise: bool) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cases = corpus::load_dir(&corpus::corpus_dir(env!("CARGO_MANIFEST_DIR")));
    let mut failures = Vec::new();
    let mut ran = 0;
    let run = |c: &&Case| !bytewise || (c.options.bytewise && c.options.adapter_bytewise);
    for case in cases.iter().filter(run) {
        ran += 1;
        if let Err(e) = run_case(&rt, case, bytewise) {
            failures.push(format!("== {} ({})\n{e}", case.name, case.location));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_tokio_whole_writes() {
    run_all(false);
}

#[test]
fn corpus_tokio_bytewise() {
    run_all(true);
}
