//! The shared transcript corpus through `smtp-blocking`, over loopback TCP
//! (with real TLS at every `TLS` step), server bytes sent whole and then one
//! byte per packet.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use smtp_blocking::{Client, Error, Options};
use smtp_sansio::Domain;
use smtp_tests::corpus::{self, Action, Case};
use smtp_tests::{ServerOptions, TestServer, certs, corpus_server};

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

fn run(
    client: &mut Option<Client>,
    case: &Case,
    addr: std::net::SocketAddr,
    action: &Action,
) -> String {
    let res = |r: Result<String, Error>| r.unwrap_or_else(|e| outcome(&e));
    if let Action::Connect = action {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        return match Client::with_options(stream, &case.options.server_name, options(case), false) {
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
        Action::Hello(name) => res(c.hello(name).map(|()| "ok".into())),
        Action::StartTls => res(c
            .starttls(Some(certs::client_config()))
            .map(|()| "ok".into())),
        Action::Auth {
            mechanism,
            user,
            secret,
        } => {
            let mut m = corpus::mechanism(mechanism, user, secret, &case.options.server_name);
            res(c.auth(&mut *m).map(|()| "ok 235".into()))
        }
        Action::Mail(from, params) => {
            let params = corpus::mail_params(params).expect("params");
            res(c.mail_with(from, params).map(|r| corpus::reply_outcome(&r)))
        }
        Action::Rcpt(to, params) => {
            let params = corpus::rcpt_params(params).expect("params");
            res(c.rcpt_with(to, params).map(|r| corpus::reply_outcome(&r)))
        }
        Action::Data(body) => res((|| {
            let mut w = c.data()?;
            w.write_body(body)?;
            Ok(corpus::reply_outcome(&w.finish()?))
        })()),
        Action::Bdat(body) => res((|| {
            let mut w = c.bdat()?;
            w.write_all(body)
                .map_err(|e| Error::Io(std::sync::Arc::new(e)))?;
            Ok(corpus::reply_outcome(&w.finish()?))
        })()),
        Action::Send {
            from,
            to,
            body,
            params,
        } => match corpus::envelope(from, to, params) {
            Ok(env) => match c.send(&env, &body[..]) {
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
        Action::Verify(a) => res(c.verify(a).map(corpus::verify_outcome)),
        Action::Noop => res(c.noop().map(|()| "ok 250".into())),
        Action::Reset => res(c.reset().map(|()| "ok 250".into())),
        Action::Quit => match client.take() {
            Some(c) => res(c.quit().map(|()| "ok 221".into())),
            None => "error closed".into(),
        },
        Action::Extension(name) => match c.extension(name) {
            Some(v) => format!("value {v}"),
            None => "none".into(),
        },
    }
}

fn run_case(case: &Case, bytewise: bool) -> Result<(), String> {
    let opts = ServerOptions {
        io_timeout: Duration::from_secs(10),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(corpus_server::handler(case, bytewise), opts);
    let mut client = None;
    let mut failure = None;
    for (action, expected) in corpus::actions(case) {
        let got = run(&mut client, case, server.addr(), &action);
        if !corpus::outcome_matches(&expected, &got) {
            failure = Some(format!("{action:?}: expected `{expected}`, got `{got}`"));
            break;
        }
    }
    drop(client);
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
    let cases = corpus::load_dir(&corpus::corpus_dir(env!("CARGO_MANIFEST_DIR")));
    let mut failures = Vec::new();
    let run = |c: &&Case| !bytewise || (c.options.bytewise && c.options.adapter_bytewise);
    for case in cases.iter().filter(run) {
        if let Err(e) = run_case(case, bytewise) {
            failures.push(format!("== {} ({})\n{e}", case.name, case.location));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_blocking_whole_writes() {
    run_all(false);
}

#[test]
fn corpus_blocking_bytewise() {
    run_all(true);
}
