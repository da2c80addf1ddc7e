'use strict'
// Haraka plugin for the interop tests (copied into STATE_DIR/haraka/plugins
// as interop_spool.js by haraka_instance.sh):
//
//   rcpt   the shared test rule: a local part starting with "reject" is
//          refused with 550 5.1.1; every other recipient is accepted (no
//          relay check: the listener is on 127.0.0.1 only)
//   queue, queue_outbound (authenticated sessions are "relaying" and go
//          to queue_outbound; no message may reach Haraka's outbound
//          delivery, which config/outbound.ini disables as well)
//          writes the message, as Haraka would queue it, to the spool as
//          <n>.eml plus its envelope as <n>.json (n = 1, 2, ...; both
//          written to a temp file and renamed, the .json first, like the
//          other spools)
//
// The spool directory is [main] dir in config/interop_spool.ini.

const fs = require('node:fs')
const path = require('node:path')
const { Writable } = require('node:stream')

exports.register = function () {
    this.cfg = this.config.get('interop_spool.ini')
    this.spool = this.cfg.main.dir
    // Haraka runs as one process here (no cluster), so a counter will do.
    this.n = 0
    for (const f of fs.readdirSync(this.spool)) {
        const m = /^(\d+)\.json$/.exec(f)
        if (m && Number(m[1]) > this.n) this.n = Number(m[1])
    }
    this.register_hook('mail', 'record_mail')
    this.register_hook('rcpt', 'check_rcpt')
    this.register_hook('queue', 'write_spool')
    this.register_hook('queue_outbound', 'write_spool')
}

// The bare user@host of an @haraka/email-address Address (a getter in 3.x).
function addr(a) {
    return typeof a.address === 'function' ? a.address() : a.address
}

exports.record_mail = function (next, connection, params) {
    connection.transaction.notes.interop_mail_params = params[1] || {}
    next()
}

exports.check_rcpt = function (next, connection, params) {
    const rcpt = params[0]
    if (/^reject/i.test(rcpt.user || '')) {
        return next(
            DENY,
            `5.1.1 <${addr(rcpt)}>: Recipient address rejected (test rule: local part starts with 'reject')`,
        )
    }
    next(OK)
}

function atomicWrite(dir, name, data) {
    const tmp = path.join(dir, `.tmp-${process.pid}-${name}`)
    fs.writeFileSync(tmp, data, { mode: 0o644 })
    fs.renameSync(tmp, path.join(dir, name))
}

exports.write_spool = function (next, connection) {
    const txn = connection.transaction
    const chunks = []
    const sink = new Writable({
        write(chunk, _enc, cb) {
            chunks.push(chunk)
            cb()
        },
    })
    sink.once('finish', () => {
        const n = ++this.n
        const mailParams = txn.notes.interop_mail_params || {}
        const meta = {
            id: n,
            server: 'haraka',
            uuid: txn.uuid,
            mail_from: addr(txn.mail_from),
            mail_params: mailParams,
            rcpt_tos: txn.rcpt_to.map(addr),
            smtp_utf8: Object.keys(mailParams).some((k) => k.toUpperCase() === 'SMTPUTF8'),
            helo: connection.hello.host,
            tls: !!connection.tls.enabled,
            auth_user: connection.notes.auth_user || null,
            auth_method: connection.notes.auth_method || null,
            size: txn.data_bytes,
            note: '<n>.eml is the message as Haraka queues it (its Received header included)',
        }
        try {
            atomicWrite(this.spool, `${n}.json`, JSON.stringify(meta, null, 2))
            atomicWrite(this.spool, `${n}.eml`, Buffer.concat(chunks))
        } catch (err) {
            connection.logerror(this, `spool write failed: ${err.message}`)
            return next(DENYSOFT, 'spool write failed')
        }
        next(OK, `queued as ${n}`)
    })
    txn.message_stream.pipe(sink)
}
