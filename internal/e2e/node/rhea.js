// rhea.js: a second, independent AMQP 1.0 client (rhea, not the Azure SDK).
//
//   node -r ./hosts.js rhea.js --mode plain|cbs --host H --device ID --token SAS
//        [--port 5671] [--timeout MS]
//
// plain: SASL PLAIN with user {ID}@sas.{hub} (hub = first label of H) and
//        the SAS token as password.
// cbs:   SASL ANONYMOUS, then put-token on $cbs (reference §4.3), checking
//        the answer's correlation-id and int status-code.
// Then it sends one message to /devices/{ID}/messages/events and waits for
// the disposition. Prints one JSON line:
//   {"ok":true,"sent":1,"statusCode":200,"elapsedMs":...}
//   {"ok":false,"error":"...","message":"...","stage":"open|cbs|send",...}
'use strict';

const rhea = require('rhea');
const { parseArgs, finish, guard } = require('./cli');

const started = Date.now();
const { flags } = parseArgs(process.argv.slice(2));
guard(Number(flags.timeout || 30000), started);

const host = flags.host;
const device = flags.device;
const token = flags.token;
const mode = flags.mode || 'plain';
const hub = String(host).split('.')[0];
let stage = 'open';
let statusCode = 0;

function fail(error, message) {
  finish({ ok: false, error, message: String(message), stage, statusCode, elapsedMs: Date.now() - started });
}

const options = {
  transport: 'tls', host, port: Number(flags.port || 5671), servername: host, hostname: host,
  container_id: 'rhea-e2e-' + process.pid, reconnect: false,
};
if (mode === 'plain') {
  options.username = `${device}@sas.${hub}`;
  options.password = token;
} else {
  options.username = 'anonymous'; // no password: SASL ANONYMOUS
}

const container = rhea.create_container();
const conn = container.connect(options);
conn.on('connection_error', (ctx) => fail('ConnectionError', ctx.connection.error && ctx.connection.error.description));
conn.on('disconnected', (ctx) => fail('Disconnected', ctx.error || 'disconnected'));
conn.on('connection_close', (ctx) => fail('ConnectionClosed', (ctx.connection.error && ctx.connection.error.condition) || 'closed'));

function sendEvent() {
  stage = 'send';
  const snd = conn.open_sender({ target: { address: `/devices/${device}/messages/events` } });
  let done = false;
  snd.on('sendable', () => {
    if (done) return;
    done = true;
    snd.send({ message_id: 'rhea-' + process.pid, body: rhea.message.data_section(Buffer.from('{"from":"rhea"}')), application_properties: { client: 'rhea' } });
  });
  snd.on('accepted', () => {
    finish({ ok: true, sent: 1, statusCode, elapsedMs: Date.now() - started });
    conn.close();
  });
  snd.on('rejected', (ctx) => fail('Rejected', ctx.delivery.remote_state && ctx.delivery.remote_state.error && ctx.delivery.remote_state.error.condition));
  snd.on('sender_error', (ctx) => fail('SenderError', ctx.sender.error && ctx.sender.error.condition));
}

conn.on('connection_open', () => {
  if (mode === 'plain') return sendEvent();
  stage = 'cbs';
  const id = 'cbs-' + process.pid;
  const rcv = conn.open_receiver({ source: { address: '$cbs' } });
  const snd = conn.open_sender({ target: { address: '$cbs' } });
  rcv.on('message', (ctx) => {
    const m = ctx.message;
    if (m.correlation_id !== id) return fail('CBS', `correlation-id ${m.correlation_id}`);
    statusCode = m.application_properties['status-code'];
    if (statusCode !== 200) return fail('CBS', m.application_properties['status-description']);
    sendEvent();
  });
  snd.on('sendable', () => {
    if (snd.sent) return;
    snd.sent = true;
    const audience = encodeURIComponent(`${host}/devices/${device}`);
    snd.send({
      message_id: id, to: '$cbs', reply_to: 'cbs', body: token,
      application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: audience },
    });
  });
});
