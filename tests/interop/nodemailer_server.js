#!/usr/bin/env node
'use strict';
/*
 * nodemailer smtp-server for the interop tests.  Listens on 127.0.0.1 only.
 *
 *   node nodemailer_server.js --port N --cert F --key F --spool DIR \
 *        --user U --password P [--size BYTES] [--lmtp] [--implicit-tls] [--verbose]
 *
 * Default mode: plain SMTP with STARTTLS offered (AUTH refused with 538 before
 * STARTTLS), AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2, PIPELINING, 8BITMIME,
 * SMTPUTF8, ENHANCEDSTATUSCODES, DSN, SIZE, (after TLS) REQUIRETLS.
 * AUTH is optional (authOptional: true) so unauthenticated MAIL works too.
 *
 *   --implicit-tls  TLS from the first byte (SMTPS, "port 465" style)
 *   --lmtp          speak LMTP (LHLO; one DATA reply per accepted recipient)
 *
 * XOAUTH2: the access token must equal --password (user must equal --user).
 *
 * Test rules:
 *   RCPT whose local part starts with "reject"   -> 550 5.1.1 at RCPT
 *   (LMTP only) local part starts with "datafail" -> 550 at the DATA reply for
 *                                                    that recipient only
 *
 * Every accepted message is stored in --spool as <n>.json (envelope) and
 * <n>.eml (raw bytes exactly as received after dot-unstuffing, without the
 * terminating ".").  Both are written to a temp file and renamed; the .json
 * is renamed first, so when <n>.eml exists <n>.json exists too.
 *
 * Prints "READY <port>" on stdout when listening.
 */
const fs = require('fs');
const path = require('path');
const { SMTPServer } = require('smtp-server');

function parseArgs(argv) {
    const opts = {
        host: '127.0.0.1',
        size: 10 * 1024 * 1024,
        lmtp: false,
        implicitTls: false,
        verbose: false,
        name: 'nodemailer.localhost'
    };
    const valued = { '--port': 'port', '--cert': 'cert', '--key': 'key', '--spool': 'spool', '--user': 'user',
        '--password': 'password', '--size': 'size', '--host': 'host', '--name': 'name',
        '--socket-timeout': 'socketTimeout' };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (valued[a]) {
            if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
            opts[valued[a]] = argv[++i];
        } else if (a === '--lmtp') {
            opts.lmtp = true;
        } else if (a === '--implicit-tls') {
            opts.implicitTls = true;
        } else if (a === '--verbose') {
            opts.verbose = true;
        } else {
            throw new Error(`unknown argument ${a}`);
        }
    }
    for (const k of ['port', 'cert', 'key', 'spool', 'user', 'password']) {
        if (opts[k] === undefined) throw new Error(`--${k} is required`);
    }
    opts.port = Number(opts.port);
    opts.size = Number(opts.size);
    if (opts.socketTimeout !== undefined) opts.socketTimeout = Number(opts.socketTimeout);
    return opts;
}

const opts = parseArgs(process.argv.slice(2));
const spool = path.resolve(opts.spool);
fs.mkdirSync(spool, { recursive: true });

let counter = fs.readdirSync(spool)
    .map(n => /^(\d+)\.eml$/.exec(n))
    .filter(Boolean)
    .reduce((m, r) => Math.max(m, Number(r[1])), 0);
let tmpSeq = 0;

function atomicWrite(name, data) {
    const tmp = path.join(spool, `.tmp-${process.pid}-${++tmpSeq}`);
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
        fs.writeSync(fd, data);
        fs.fsyncSync(fd);
    } finally {
        fs.closeSync(fd);
    }
    fs.renameSync(tmp, path.join(spool, name));
}

function localPart(address) {
    const at = address.lastIndexOf('@');
    return (at >= 0 ? address.slice(0, at) : address).toLowerCase();
}

function smtpError(code, message) {
    const err = new Error(message);
    err.responseCode = code;
    return err;
}

const server = new SMTPServer({
    name: opts.name,
    banner: opts.lmtp ? 'nodemailer smtp-server (LMTP) interop test' : 'nodemailer smtp-server interop test',
    lmtp: opts.lmtp,
    secure: opts.implicitTls,
    key: fs.readFileSync(opts.key),
    cert: fs.readFileSync(opts.cert),
    size: opts.size,
    rejectOversized: true, // 552 after DATA for messages over --size (default: accepted!)
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'],
    authOptional: true,
    allowInsecureAuth: false,
    hidePIPELINING: false,
    hide8BITMIME: false,
    hideSMTPUTF8: false,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: false,
    hideREQUIRETLS: false,
    logger: opts.verbose,
    disableReverseLookup: true,
    // --socket-timeout MS: close a connection idle that long with
    // "421 Timeout - closing connection" (default: smtp-server's 60 s).
    ...(opts.socketTimeout !== undefined ? { socketTimeout: opts.socketTimeout } : {}),

    onAuth(auth, session, callback) {
        const userOk = auth.username === opts.user;
        switch (auth.method) {
            case 'PLAIN':
            case 'LOGIN':
                if (userOk && auth.password === opts.password) {
                    return callback(null, { user: auth.username });
                }
                return callback(smtpError(535, 'Authentication credentials invalid'));
            case 'CRAM-MD5':
                if (userOk && auth.validatePassword(opts.password)) {
                    return callback(null, { user: auth.username });
                }
                return callback(smtpError(535, 'Authentication credentials invalid'));
            case 'XOAUTH2':
                if (userOk && auth.accessToken === opts.password) {
                    return callback(null, { user: auth.username });
                }
                // smtp-server sends "334 <base64 json>", the client answers with an
                // empty line and then gets "535 5.7.8 ..." (RFC 7628 style failure).
                return callback(null, {
                    data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' }
                });
            default:
                return callback(smtpError(504, 'Unrecognized authentication type'));
        }
    },

    onRcptTo(address, session, callback) {
        if (localPart(address.address).startsWith('reject')) {
            return callback(smtpError(550, `<${address.address}>: Recipient address rejected (test rule: local part starts with 'reject')`));
        }
        return callback();
    },

    onData(stream, session, callback) {
        const chunks = [];
        stream.on('data', c => chunks.push(c));
        stream.on('error', err => callback(err));
        stream.on('end', () => {
            if (stream.sizeExceeded) {
                // with rejectOversized smtp-server answers 552 itself; never store it
                return callback(smtpError(552, 'Error: message exceeds fixed maximum message size ' + opts.size));
            }
            const raw = Buffer.concat(chunks);
            const env = session.envelope;
            const n = ++counter;
            const meta = {
                id: n,
                server: 'nodemailer',
                lmtp: opts.lmtp,
                mailFrom: env.mailFrom ? { address: env.mailFrom.address, args: env.mailFrom.args || {} } : null,
                rcptTo: env.rcptTo.map(r => ({ address: r.address, args: r.args || {}, dsn: r.dsn || null })),
                smtpUtf8: !!env.smtpUtf8,
                utf8: !!env.smtpUtf8,
                bodyType: env.bodyType || null,
                requireTLS: !!env.requireTLS,
                dsn: env.dsn || null,
                helo: session.hostNameAppearsAs || null,
                tls: !!session.secure,
                user: session.user || null,
                transmissionType: session.transmissionType || null,
                size: raw.length
            };
            try {
                atomicWrite(`${n}.json`, JSON.stringify(meta, null, 2) + '\n');
                atomicWrite(`${n}.eml`, raw);
            } catch (err) {
                return callback(smtpError(451, 'Local error while storing message: ' + err.message));
            }
            if (opts.lmtp) {
                return callback(null, env.rcptTo.map(r =>
                    localPart(r.address).startsWith('datafail')
                        ? smtpError(550, `<${r.address}>: delivery failed (test rule: local part starts with 'datafail')`)
                        : `OK: stored as ${n} for <${r.address}>`));
            }
            return callback(null, `OK: message queued as ${n}`);
        });
    }
});

server.on('error', err => {
    process.stderr.write(`smtp-server error: ${err && err.stack ? err.stack : err}\n`);
});

function shutdown() {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(opts.port, opts.host, () => {
    process.stdout.write(`READY ${opts.port}\n`);
});
