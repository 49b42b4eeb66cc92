// provision.js: one device provisioned by the official azure-iot-provisioning-device
// SDK, then (optionally) connected to its assigned hub with azure-iot-device.
//
//   node -r ./hosts.js provision.js --transport mqtt|mqttws|amqp|amqpws|http --dps-host H --id-scope S
//        --registration-id R (--key K | --cert F --cert-key F) [--connect mqtt|mqttws] [--send N]
//        [--follow --ready-file F]   (seed workflow: stay connected; when the hub drops the
//                                     device, show the old hub refuses it, re-provision, connect)
//        [--timeout MS]
//
// Prints one JSON line:
//   {"ok":true,"result":{assignedHub,deviceId,status,substatus},"sent":N,...}
//   {"ok":false,"error":"UnauthorizedError","message":"...","stage":"register"}
// With --follow: {"ok":true,"result":<first>,"second":<second>,"refused":{error,message},
//   "droppedAt":ms,"connectedAgainAt":ms}
'use strict';

const fs = require('fs');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const provMqtt = require('azure-iot-provisioning-device-mqtt');
const { Http: ProvHttp } = require('azure-iot-provisioning-device-http');
const provAmqp = require('azure-iot-provisioning-device-amqp');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { X509Security } = require('azure-iot-security-x509');
const { Client, Message } = require('azure-iot-device');
const { NoRetry } = require('azure-iot-common');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { parseArgs, failure, finish, guard } = require('./cli');

const started = Date.now();
const { flags } = parseArgs(process.argv.slice(2));
guard(Number(flags.timeout || 30000), started);

function provTransport() {
  switch (flags.transport || 'mqtt') {
    case 'mqtt': return new provMqtt.Mqtt();
    case 'mqttws': return new provMqtt.MqttWs();
    case 'http': return new ProvHttp();
    case 'amqp': return new provAmqp.Amqp();
    case 'amqpws': return new provAmqp.AmqpWs();
  }
  throw new Error(`unknown --transport ${flags.transport}`);
}

function security() {
  if (flags.cert) {
    return new X509Security(flags['registration-id'], {
      cert: fs.readFileSync(flags.cert, 'utf8'),
      key: fs.readFileSync(flags['cert-key'], 'utf8'),
    });
  }
  return new SymmetricKeySecurityClient(flags['registration-id'], flags.key);
}

async function provision() {
  const client = ProvisioningDeviceClient.create(flags['dps-host'], flags['id-scope'], provTransport(), security());
  const r = await client.register();
  return { assignedHub: r.assignedHub, deviceId: r.deviceId, status: r.status, substatus: r.substatus };
}

function deviceKey() {
  // The device uses the same key for the hub as for DPS (reference §2.6).
  return flags.key;
}

async function connect(result) {
  let cs = `HostName=${result.assignedHub};DeviceId=${result.deviceId}`;
  cs += flags.cert ? ';x509=true' : `;SharedAccessKey=${deviceKey()}`;
  const T = (flags.connect || 'mqtt') === 'mqttws' ? MqttWs : Mqtt;
  const client = Client.fromConnectionString(cs, T);
  if (flags.follow) {
    // The application handles a dropped session itself: with NoRetry the
    // SDK emits 'disconnect' at once (its default policy would retry a
    // refused reconnect as NotConnectedError for 4 minutes). The app then
    // tries its hub and, refused there, re-provisions.
    client.setRetryPolicy(new NoRetry());
  }
  if (flags.cert) {
    await client.setOptions({ cert: fs.readFileSync(flags.cert, 'utf8'), key: fs.readFileSync(flags['cert-key'], 'utf8') });
  }
  await client.open();
  return client;
}

async function send(client, n) {
  for (let i = 0; i < n; i++) {
    const m = new Message(JSON.stringify({ seq: i }));
    await client.sendEvent(m);
  }
  return n;
}

async function main() {
  let result;
  try {
    result = await provision();
  } catch (err) {
    return failure(err, { stage: 'register', elapsedMs: Date.now() - started });
  }
  if (!flags.connect) return { ok: true, result, elapsedMs: Date.now() - started };
  let client;
  try {
    client = await connect(result);
  } catch (err) {
    return failure(err, { stage: 'open', result, elapsedMs: Date.now() - started });
  }
  const n = flags.send === undefined ? 1 : Number(flags.send);
  let sent;
  try {
    sent = await send(client, n);
  } catch (err) {
    return failure(err, { stage: 'send', result });
  }
  if (!flags.follow) {
    await client.close();
    return { ok: true, result, sent, elapsedMs: Date.now() - started };
  }
  // Seed workflow: wait until the hub drops us, prove the old hub refuses
  // us, re-provision with the same SDK and connect to the new hub.
  const dropped = new Promise((resolve) => client.on('disconnect', resolve));
  client.on('error', () => {});
  fs.writeFileSync(flags['ready-file'], 'connected\n');
  const why = await dropped;
  const droppedAt = Date.now();
  const dropReason = why && why.transportObj ? String(why.transportObj.name || why.transportObj) : String(why);
  await client.close().catch(() => {});
  let refused = null;
  try {
    const again = await connect(result);
    await again.close();
  } catch (err) {
    refused = { error: err.name || 'Error', message: String(err.message || err) };
  }
  let second;
  try {
    second = await provision();
  } catch (err) {
    return failure(err, { stage: 'reprovision', result, refused });
  }
  let c2;
  try {
    c2 = await connect(second);
  } catch (err) {
    return failure(err, { stage: 'reopen', result, second, refused });
  }
  const connectedAgainAt = Date.now();
  const sent2 = await send(c2, 1);
  await c2.close();
  return { ok: true, result, second, refused, dropReason, sent: sent + sent2, droppedAt, connectedAgainAt, elapsedMs: Date.now() - started };
}

main().then(finish, (err) => finish(failure(err, { stage: 'main' })));
