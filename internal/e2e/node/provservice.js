// provservice.js: the azure-iot-provisioning-service client against hubgate dps.
//
//   node -r ./hosts.js provservice.js crud --connection-string CS --registration-id R --hub H
//
// Creates an individual symmetric-key enrollment, reads it, updates it with
// its etag, fails an update with a stale etag, creates/reads/deletes a
// group, deletes the enrollment, and reads it again (404). One JSON line:
//   {"ok":true,"steps":{...}} or {"ok":false,"error":...,"stage":...}
'use strict';

const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { parseArgs, failure, finish, guard } = require('./cli');

const started = Date.now();
const { flags } = parseArgs(process.argv.slice(2));
guard(Number(flags.timeout || 30000), started);

async function main() {
  const client = ProvisioningServiceClient.fromConnectionString(flags['connection-string']);
  const id = flags['registration-id'];
  const steps = {};
  let stage = 'create';
  try {
    const created = (await client.createOrUpdateIndividualEnrollment({
      registrationId: id,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: '', secondaryKey: '' } },
      provisioningStatus: 'enabled',
      iotHubs: [flags.hub],
      allocationPolicy: 'static',
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
    })).responseBody;
    steps.created = { etag: created.etag, keyLength: created.attestation.symmetricKey.primaryKey.length, iotHubs: created.iotHubs };
    stage = 'get';
    const got = (await client.getIndividualEnrollment(id)).responseBody;
    steps.got = { etag: got.etag, provisioningStatus: got.provisioningStatus };
    stage = 'update';
    got.provisioningStatus = 'disabled';
    const updated = (await client.createOrUpdateIndividualEnrollment(got)).responseBody;
    steps.updated = { etag: updated.etag, provisioningStatus: updated.provisioningStatus };
    stage = 'stale-update';
    try {
      await client.createOrUpdateIndividualEnrollment(got); // still carries the old etag
      steps.stale = { error: null };
    } catch (err) {
      steps.stale = { error: err.name, statusCode: err.response && err.response.statusCode };
    }
    stage = 'group';
    const g = (await client.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: id + '-group',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: '', secondaryKey: '' } },
      provisioningStatus: 'enabled',
    })).responseBody;
    const g2 = (await client.getEnrollmentGroup(id + '-group')).responseBody;
    await client.deleteEnrollmentGroup(id + '-group');
    steps.group = { etag: g.etag, sameEtag: g.etag === g2.etag };
    stage = 'delete';
    await client.deleteIndividualEnrollment(id);
    stage = 'get-deleted';
    try {
      await client.getIndividualEnrollment(id);
      steps.afterDelete = { error: null };
    } catch (err) {
      steps.afterDelete = { error: err.name, statusCode: err.response && err.response.statusCode };
    }
  } catch (err) {
    return failure(err, { stage, steps });
  }
  return { ok: true, steps, elapsedMs: Date.now() - started };
}

main().then(finish, (err) => finish(failure(err, { stage: 'main' })));
