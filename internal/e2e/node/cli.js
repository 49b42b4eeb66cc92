// Shared plumbing for the e2e drivers: flag parsing and the one-JSON-line
// contract (exactly one line on stdout, exit code 0 whatever happened, so the
// Go side always gets a verdict it can assert on).
'use strict';

// parseArgs splits argv into positionals and --flag value pairs. A flag
// followed by another flag (or nothing) is boolean true.
function parseArgs(argv) {
  const flags = {};
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) {
        flags[a.slice(2, eq)] = a.slice(eq + 1);
      } else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
        flags[a.slice(2)] = argv[++i];
      } else {
        flags[a.slice(2)] = true;
      }
    } else {
      positional.push(a);
    }
  }
  return { flags, positional };
}

// errorName names an error the way the SDKs do: azure-iot-common errors set
// .name; fall back to the constructor's name.
function errorName(err) {
  if (!err) return 'Error';
  if (err.name && err.name !== 'Error') return err.name;
  if (err.constructor && err.constructor.name) return err.constructor.name;
  return 'Error';
}

function failure(err, extra) {
  const out = Object.assign({ ok: false, error: errorName(err), message: String((err && err.message) || err) }, extra || {});
  if (err && err.transportError && err.transportError.message) out.transportMessage = String(err.transportError.message);
  if (err && err.response && err.response.statusCode) out.statusCode = err.response.statusCode;
  return out;
}

let printed = false;

// finish prints result (once) and exits 0 after a short grace period that
// lets stdout drain; later calls are ignored, so a timeout racing a result
// cannot print a second line.
function finish(result) {
  if (printed) return;
  printed = true;
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

// guard bounds the whole run: after ms the run ends as {"ok":false,"error":"Timeout"}.
function guard(ms, started) {
  const t = setTimeout(() => {
    finish({ ok: false, error: 'Timeout', message: `no outcome within ${ms} ms`, elapsedMs: Date.now() - started });
  }, ms);
  process.on('uncaughtException', (err) => finish(failure(err, { uncaught: true, elapsedMs: Date.now() - started })));
  process.on('unhandledRejection', (err) => finish(failure(err, { uncaught: true, elapsedMs: Date.now() - started })));
  return t;
}

module.exports = { parseArgs, errorName, failure, finish, guard };
