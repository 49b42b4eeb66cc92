// registry.js: the service side with the official azure-iothub Registry.
//
//   node -r ./hosts.js registry.js --connection-string CS COMMAND ID [flags]
//     create ID [--auth sas|selfsigned|ca] [--primary-thumbprint T]
//               [--secondary-thumbprint T] [--status enabled|disabled]
//     get ID
//     delete ID
//     update-status ID enabled|disabled
//     list
//
// Prints one JSON line: {"ok":true,"result":<device JSON or null>} or
// {"ok":false,"error":"DeviceNotFoundError","message":"...","statusCode":404}.
// CS may also come from env HUBGATE_CONNECTION_STRING.
'use strict';

const { Registry } = require('azure-iothub');
const { parseArgs, failure, finish, guard } = require('./cli');

const started = Date.now();
const { flags, positional } = parseArgs(process.argv.slice(2));
guard(Number(flags.timeout || 30000), started);

function deviceFromFlags(id) {
  const device = { deviceId: id, status: flags.status || 'enabled' };
  switch (flags.auth || 'sas') {
    case 'sas':
      break; // empty keys: the hub generates them (reference §7.2)
    case 'selfsigned':
      device.authentication = {
        type: 'selfSigned',
        x509Thumbprint: {
          primaryThumbprint: flags['primary-thumbprint'] || null,
          secondaryThumbprint: flags['secondary-thumbprint'] || null,
        },
      };
      break;
    case 'ca':
      device.authentication = { type: 'certificateAuthority' };
      break;
    default:
      throw new Error(`unknown --auth ${flags.auth}`);
  }
  return device;
}

async function main() {
  const cs = flags['connection-string'] || process.env.HUBGATE_CONNECTION_STRING;
  if (!cs) throw new Error('--connection-string is required');
  const registry = Registry.fromConnectionString(cs);
  const [command, id, arg] = positional;
  let res;
  try {
    switch (command) {
      case 'create':
        res = await registry.create(deviceFromFlags(id));
        break;
      case 'get':
        res = await registry.get(id);
        break;
      case 'delete':
        res = await registry.delete(id);
        break;
      case 'update-status': {
        if (arg !== 'enabled' && arg !== 'disabled') throw new Error('update-status ID enabled|disabled');
        const current = (await registry.get(id)).responseBody;
        current.status = arg;
        res = await registry.update(current);
        break;
      }
      case 'list':
        res = await registry.list();
        break;
      default:
        throw new Error(`unknown command ${command}`);
    }
  } catch (err) {
    return failure(err, { command });
  }
  const body = res && res.responseBody !== undefined ? res.responseBody : null;
  const statusCode = res && res.httpResponse ? res.httpResponse.statusCode : undefined;
  return { ok: true, result: body === '' ? null : body, statusCode };
}

main().then(finish, (err) => finish(failure(err, { stage: 'setup' })));
