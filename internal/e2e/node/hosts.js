// Preload (node -r ./hosts.js): resolve the test hubs' host names without
// touching /etc/hosts. HUBGATE_TEST_HOSTS="name=ip,name=ip" maps each name
// (case-insensitive) to one address; every other name goes to the real
// resolver. Each e2e hub thus has its own host name on its own loopback
// address, which the SDKs put into SNI, the MQTT username and the SAS sr.
//
// net.connect/tls.connect call dns.lookup at connect time through the dns
// module object, so replacing dns.lookup here covers mqtt.js (mqtts), ws
// (wss) and https (azure-iothub). Node 20 sets autoSelectFamily by default
// and then asks with {all: true}, expecting an array of {address, family}.
'use strict';

const dns = require('dns');
const net = require('net');

const table = new Map();
for (const pair of (process.env.HUBGATE_TEST_HOSTS || '').split(',')) {
  const eq = pair.indexOf('=');
  if (eq <= 0) continue;
  const name = pair.slice(0, eq).trim().toLowerCase();
  const ip = pair.slice(eq + 1).trim();
  const family = net.isIP(ip);
  if (!family) throw new Error(`hosts.js: ${ip} (for ${name}) is not an IP address`);
  table.set(name, { address: ip, family });
}

const realLookup = dns.lookup;

function lookup(hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  } else if (typeof options === 'number') {
    options = { family: options };
  } else if (!options) {
    options = {};
  }
  const hit = typeof hostname === 'string' ? table.get(hostname.toLowerCase()) : undefined;
  if (!hit) return realLookup.call(dns, hostname, options, callback);
  const wanted = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family || 0);
  process.nextTick(() => {
    if (wanted && wanted !== hit.family) {
      const err = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      err.hostname = hostname;
      return callback(err);
    }
    if (options.all) return callback(null, [{ address: hit.address, family: hit.family }]);
    return callback(null, hit.address, hit.family);
  });
  return {};
}

dns.lookup = lookup;

// dns.promises.lookup is a separate function; keep it consistent.
const realPromisesLookup = dns.promises.lookup;
dns.promises.lookup = function (hostname, options) {
  const hit = typeof hostname === 'string' ? table.get(hostname.toLowerCase()) : undefined;
  if (!hit) return realPromisesLookup.call(dns.promises, hostname, options);
  return new Promise((resolve, reject) => {
    lookup(hostname, options || {}, (err, address, family) => {
      if (err) return reject(err);
      resolve(Array.isArray(address) ? address : { address, family });
    });
  });
};
