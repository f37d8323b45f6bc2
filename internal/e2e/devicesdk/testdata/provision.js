// Fleet provisioning against fleetca with the unmodified AWS IoT Device SDK
// v2 for JavaScript, as its basic and CSR samples drive it
// (samples/node/service_clients/fleet_provisioning): MQTT 5 over mutual TLS
// with the claim certificate, IotIdentityClientv2 with room for two
// request-response subscriptions (so RegisterThing first unsubscribes the
// certificate topics), CreateKeysAndCertificate or CreateCertificateFromCsr,
// then RegisterThing. Then the device connects again with its new
// certificate, as its thing, and publishes at QoS 1 until the PUBACK.
//
// Each step's response is one JSON line on stdout; any rejection, failure
// or timeout ends the process with status 1 and the error on stderr.
//
// node provision.js --mode keys|csr --endpoint localhost --port 8883 --ca root.pem \
//   --claim-cert claim.pem --claim-key claim.key --template NAME --serial S \
//   --out-dir DIR [--csr device.csr --csr-key device.key] [--topic T] [--crt-log debug]
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { iot, iotidentity, mqtt5, io } = require('aws-iot-device-sdk-v2');

const STEP_TIMEOUT_MS = 60000;

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument ${JSON.stringify(a)}`);
    }
    args[a.slice(2)] = argv[++i];
  }
  for (const k of ['mode', 'endpoint', 'port', 'ca', 'claim-cert', 'claim-key', 'template', 'serial', 'out-dir']) {
    if (!args[k]) throw new Error(`--${k} is required`);
  }
  if (args.mode !== 'keys' && args.mode !== 'csr') throw new Error('--mode must be keys or csr');
  if (args.mode === 'csr' && (!args.csr || !args['csr-key'])) throw new Error('--mode csr needs --csr and --csr-key');
  return args;
}

function out(step, response) {
  process.stdout.write(JSON.stringify({ step, response }) + '\n');
}

// withTimeout rejects when promise has not settled within STEP_TIMEOUT_MS.
function withTimeout(what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${STEP_TIMEOUT_MS / 1000}s`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// connect builds an MQTT 5 client the way the SDK's samples do (mutual TLS
// from files, the SDK's default ALPN, SNI and metrics username) and starts
// it; it resolves once CONNACK says success and rejects on the first
// failed attempt instead of letting the client retry.
async function connect(args, certPath, keyPath, clientId) {
  const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(args.endpoint, certPath, keyPath);
  builder.withCertificateAuthorityFromPath(undefined, args.ca);
  builder.withPort(Number(args.port));
  builder.withConnectProperties({ clientId, keepAliveIntervalSeconds: 1200 });
  const client = new mqtt5.Mqtt5Client(builder.build());
  const connected = new Promise((resolve, reject) => {
    client.on('connectionSuccess', (event) => resolve(event));
    client.on('connectionFailure', (event) => {
      const connack = event.connack ? ` (CONNACK reason ${event.connack.reasonCode})` : '';
      reject(new Error(`connect as ${clientId}: ${event.error}${connack}`));
    });
  });
  client.on('disconnection', (event) => {
    if (stopping.has(client)) return;
    const d = event.disconnect ? ` (DISCONNECT reason ${event.disconnect.reasonCode})` : '';
    process.stderr.write(`disconnected ${clientId}: ${event.error}${d}\n`);
  });
  client.start();
  try {
    await withTimeout(`connect as ${clientId}`, connected);
  } catch (err) {
    stop(client);
    throw err;
  }
  return client;
}

// stopping holds the clients being stopped, whose disconnection is expected.
const stopping = new WeakSet();

// stop stops the client as the samples do (stop() without a DISCONNECT
// packet closes the connection at once), waits for it, and frees it.
async function stop(client) {
  stopping.add(client);
  const stopped = new Promise((resolve) => client.once('stopped', resolve));
  client.stop();
  await withTimeout('stop', stopped).catch(() => {});
  client.close();
}

function describe(err) {
  if (err && err.modeledError) {
    return `${err.message || err}: ${JSON.stringify(err.modeledError)}`;
  }
  if (err && err.internalError) return `${err.message || err}: ${err.internalError}`;
  return err && err.stack ? err.stack : String(err);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args['crt-log']) {
    io.enable_logging(io.LogLevel[args['crt-log'].toUpperCase()]);
  }

  // 1. Provision with the claim certificate.
  const claimClientId = `fleet-provisioning-${crypto.randomBytes(4).toString('hex')}`;
  const claim = await connect(args, args['claim-cert'], args['claim-key'], claimClientId);
  const identity = iotidentity.IotIdentityClientv2.newFromMqtt5(claim, {
    maxRequestResponseSubscriptions: 2,
    maxStreamingSubscriptions: 0,
    operationTimeoutInSeconds: 30,
  });

  let certificatePem;
  let privateKeyPem;
  let ownershipToken;
  if (args.mode === 'keys') {
    const created = await withTimeout('createKeysAndCertificate', identity.createKeysAndCertificate({}));
    out('createKeysAndCertificate', { ...created, privateKey: created.privateKey ? `<${created.privateKey.length} characters>` : created.privateKey });
    certificatePem = created.certificatePem;
    privateKeyPem = created.privateKey;
    ownershipToken = created.certificateOwnershipToken;
  } else {
    const csr = fs.readFileSync(args.csr, 'utf8');
    const created = await withTimeout('createCertificateFromCsr',
      identity.createCertificateFromCsr({ certificateSigningRequest: csr }));
    out('createCertificateFromCsr', created);
    certificatePem = created.certificatePem;
    privateKeyPem = fs.readFileSync(args['csr-key'], 'utf8');
    ownershipToken = created.certificateOwnershipToken;
  }
  if (!certificatePem || !privateKeyPem || !ownershipToken) {
    throw new Error('the certificate response lacks a certificate, a key or an ownership token');
  }

  const registered = await withTimeout('registerThing', identity.registerThing({
    templateName: args.template,
    certificateOwnershipToken: ownershipToken,
    parameters: { SerialNumber: args.serial, DeviceLocation: 'Seattle' },
  }));
  out('registerThing', registered);
  if (!registered.thingName) throw new Error('registerThing answered no thingName');
  identity.close();
  await stop(claim);

  // 2. Connect as the provisioned device and publish under its policy.
  fs.mkdirSync(args['out-dir'], { recursive: true });
  const certPath = path.join(args['out-dir'], `${registered.thingName}.pem`);
  const keyPath = path.join(args['out-dir'], `${registered.thingName}.key`);
  fs.writeFileSync(certPath, certificatePem);
  fs.writeFileSync(keyPath, privateKeyPem, { mode: 0o600 });

  const device = await connect(args, certPath, keyPath, registered.thingName);
  const topic = args.topic || `fleetca/e2e/${registered.thingName}`;
  const result = await withTimeout('publish', device.publish({
    topicName: topic,
    qos: mqtt5.QoS.AtLeastOnce,
    payload: JSON.stringify({ thingName: registered.thingName, hello: 'from the AWS IoT Device SDK v2' }),
  }));
  // PUBACK 0 is success, 16 "no matching subscribers" (both success codes).
  const reason = result ? result.reasonCode : undefined;
  out('publish', { topic, puback: result });
  if (reason !== mqtt5.PubackReasonCode.Success && reason !== mqtt5.PubackReasonCode.NoMatchingSubscribers) {
    throw new Error(`publish on ${topic}: PUBACK reason ${reason}${result && result.reasonString ? ` (${result.reasonString})` : ''}`);
  }
  await stop(device);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`fleet provisioning failed: ${describe(err)}\n`);
    process.exit(1);
  },
);
