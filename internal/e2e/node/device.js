// device.js: one device session with the official azure-iot-device SDK.
//
//   node -r ./hosts.js device.js --transport mqtt|mqttws|amqp|amqpws --connection-string CS
//        [--cert F --key F] [--send N] [--token-ttl S [--token-margin S]]
//        [--sas-ttl S] [--hold MS] [--timeout MS]
//
// Opens Client.fromConnectionString(CS, Mqtt|MqttWs|Amqp|AmqpWs), sends N events
// (default 1; 0 only opens), with --hold MS waits that long and sends one
// more (token renewal must keep the session up), closes, and prints one JSON line:
//   {"ok":true,"sent":N,"elapsedMs":...}
//   {"ok":false,"error":"UnauthorizedError","message":"...","elapsedMs":...}
//
// --cert/--key: X.509 (the CS has x509=true, no key) via setOptions({cert,key}).
// --sas-ttl S: instead of the key, connect with a SharedAccessSignature=
//   connection string whose token (made by the SDK's own
//   SharedAccessSignature.create) expires S seconds from now; S may be
//   negative (an already-expired token).
// --token-ttl S: the SDK's tokenRenewal (tokenValidTimeInSeconds = S).
'use strict';

const fs = require('fs');
const { Client, Message, ConnectionString, SharedAccessSignature } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { Amqp, AmqpWs } = require('azure-iot-device-amqp');
const { parseArgs, failure, finish, guard } = require('./cli');

const started = Date.now();
const { flags } = parseArgs(process.argv.slice(2));
guard(Number(flags.timeout || 30000), started);

function elapsed() {
  return Date.now() - started;
}

async function main() {
  const transports = { mqtt: Mqtt, mqttws: MqttWs, amqp: Amqp, amqpws: AmqpWs };
  const Transport = transports[flags.transport || 'mqtt'];
  if (!Transport) throw new Error(`unknown --transport ${flags.transport}`);
  let cs = flags['connection-string'];
  if (!cs) throw new Error('--connection-string is required');

  if (flags['sas-ttl'] !== undefined) {
    const parsed = ConnectionString.parse(cs);
    const se = Math.floor(Date.now() / 1000) + Number(flags['sas-ttl']);
    const sas = SharedAccessSignature.create(parsed.HostName, parsed.DeviceId, parsed.SharedAccessKey, se);
    cs = `HostName=${parsed.HostName};DeviceId=${parsed.DeviceId};SharedAccessSignature=${sas.toString()}`;
  }

  const client = Client.fromConnectionString(cs, Transport);
  // Errors after open arrive as events; record them so they are not lost.
  let lateError = null;
  client.on('error', (err) => { lateError = lateError || err; });

  const options = {};
  if (flags.cert) {
    options.cert = fs.readFileSync(flags.cert, 'utf8');
    options.key = fs.readFileSync(flags.key, 'utf8');
  }
  if (flags['token-ttl'] !== undefined) {
    const ttl = Number(flags['token-ttl']);
    const margin = flags['token-margin'] !== undefined ? Number(flags['token-margin']) : Math.floor(ttl / 3);
    options.tokenRenewal = { tokenValidTimeInSeconds: ttl, tokenRenewalMarginInSeconds: margin };
  }
  if (Object.keys(options).length) await client.setOptions(options);

  try {
    await client.open();
  } catch (err) {
    return failure(err, { stage: 'open', elapsedMs: elapsed() });
  }

  const n = flags.send === undefined ? 1 : Number(flags.send);
  let sent = 0;
  try {
    for (let i = 0; i < n; i++) {
      const msg = new Message(JSON.stringify({ seq: i, at: new Date().toISOString() }));
      msg.messageId = `e2e-${process.pid}-${i}`;
      msg.properties.add('e2e', 'hubgate');
      await client.sendEvent(msg);
      sent++;
    }
    if (flags.hold !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, Number(flags.hold)));
      if (lateError) throw lateError;
      const msg = new Message(JSON.stringify({ seq: n, held: Number(flags.hold) }));
      await client.sendEvent(msg);
      sent++;
    }
  } catch (err) {
    await closeQuietly(client);
    return failure(err, { stage: 'send', sent, elapsedMs: elapsed() });
  }
  await closeQuietly(client);
  if (lateError) return failure(lateError, { stage: 'session', sent, elapsedMs: elapsed() });
  return { ok: true, sent, elapsedMs: elapsed() };
}

async function closeQuietly(client) {
  try {
    await client.close();
  } catch (_) {
    // The verdict is already decided; a failing close adds nothing.
  }
}

main().then(finish, (err) => finish(failure(err, { stage: 'setup', elapsedMs: elapsed() })));
