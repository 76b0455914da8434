"use strict";
// node-redis (v5) against a server on 127.0.0.1 over RESP2 or RESP3 (--resp): prints a JSON summary, exits
// non-zero on any mismatch. Its handshake is HELLO (with SETNAME) under RESP3, then CLIENT SETINFO LIB-NAME/LIB-VER.

const assert = require("node:assert/strict");
const { createClient } = require("redis");
const { version } = require("redis/package.json");
const { parseArgs, runChecks, waitFor, withTimeout } = require("./harness");

const options = parseArgs(process.argv.slice(2));
const openClients = [];

async function connect(extra = {}) {
  const client = createClient({
    socket: {
      host: "127.0.0.1",
      port: options.port,
      connectTimeout: 5000,
      reconnectStrategy: false,
      ...(options.tls ? { tls: true, ...options.tls } : {}),
    },
    RESP: options.resp,
    ...extra,
  });
  client.on("error", () => {}); // failures surface as rejected commands
  openClients.push(client);
  await withTimeout(client.connect(), "the connection handshake");
  assert.ok(client.isReady);
  return client;
}

async function checkHandshakeWithName() {
  const client = await connect({ name: "node-redis-smoke" });
  assert.equal(await client.clientGetName(), "node-redis-smoke");
  const id = await client.clientId();
  assert.ok(Number.isInteger(id) && id > 0, `CLIENT ID ${id}`);
  const hello = await client.hello(options.resp);
  assert.equal(hello.proto, options.resp);
  assert.match(hello.version, /^7\.0\./);
}

async function checkPing() {
  const client = await connect();
  assert.equal(await client.ping(), "PONG");
  assert.equal(await client.ping("with message"), "with message");
  assert.equal(await client.echo("echoed"), "echoed");
}

async function checkMultiExec() {
  const client = await connect();
  assert.deepEqual(await client.multi().ping().echo("queued").exec(), ["PONG", "queued"]);
}

async function checkClientSetName() {
  const client = await connect();
  assert.equal(await client.clientGetName(), null);
  assert.equal(await client.clientSetName("renamed-by-node-redis"), "OK");
  assert.equal(await client.clientGetName(), "renamed-by-node-redis");
}

async function checkSubscribePublish() {
  const channel = `smoke.node-redis.resp${options.resp}`;
  const subscriber = await connect();
  const publisher = await connect();
  let deliver;
  const received = new Promise((resolve) => {
    deliver = resolve;
  });
  await subscriber.subscribe(channel, (message, from) => deliver([from, message]));
  await waitFor("the subscription", async () => (await publisher.pubSubNumSub(channel))[channel] === 1);
  assert.equal(await publisher.publish(channel, "hello subscribers"), 1);
  assert.deepEqual(await withTimeout(received, "the published message"), [channel, "hello subscribers"]);
  await subscriber.unsubscribe(channel);
  await waitFor("the unsubscription", async () => (await publisher.pubSubNumSub(channel))[channel] === 0);
}

async function checkBrpop() {
  const key = `smoke:node-redis:list:resp${options.resp}`;
  const client = await connect();
  const blocker = await connect();
  await client.del(key); // the same server may be shared by several runs
  assert.equal(await client.lPush(key, ["first", "second"]), 2);
  assert.deepEqual(await client.brPop(key, 1), { key, element: "first" });
  assert.deepEqual(await client.brPop(key, 1), { key, element: "second" });
  assert.equal(await client.brPop(key, 0.05), null);
  // Whether the push lands before or after the pop blocks, the popper gets exactly this element.
  const popped = blocker.brPop(key, 5);
  assert.equal(await client.lPush(key, "woken"), 1);
  assert.deepEqual(await popped, { key, element: "woken" });
}

async function checkXreadgroup() {
  const stream = `smoke:node-redis:stream:resp${options.resp}`;
  const client = await connect();
  await client.del(stream);
  assert.equal(await client.xGroupCreate(stream, "workers", "$", { MKSTREAM: true }), "OK");
  await assert.rejects(client.xGroupCreate(stream, "workers", "$"), {
    message: "BUSYGROUP Consumer Group name already exists",
  });
  const id = await client.xAdd(stream, "*", { job: "resize", size: "64" });
  assert.match(id, /^\d+-\d+$/);
  // The raw reply: node-redis's XREADGROUP helper is not stable under RESP3, and the wire shape is what matters.
  const delivered = await client.sendCommand(
    ["XREADGROUP", "GROUP", "workers", "worker-1", "COUNT", "10", "STREAMS", stream, ">"]);
  const entries = [[id, ["job", "resize", "size", "64"]]];
  // RESP3 answers with a map of stream name to entries, RESP2 with a list of [name, entries] pairs.
  const expected = options.resp === 3 ? Object.assign(Object.create(null), { [stream]: entries }) : [[stream, entries]];
  assert.deepEqual(delivered, expected);
  assert.equal(await client.xAck(stream, "workers", id), 1);
  assert.equal(await client.sendCommand(["XREADGROUP", "GROUP", "workers", "worker-1", "STREAMS", stream, ">"]), null);
}

const checks = [
  ["handshake_with_name", checkHandshakeWithName],
  ["ping_echo", checkPing],
  ["multi_exec", checkMultiExec],
  ["client_setname", checkClientSetName],
  ["subscribe_publish", checkSubscribePublish],
];
if (options.lists) checks.push(["brpop", checkBrpop]);
if (options.streams) checks.push(["xreadgroup", checkXreadgroup]);

runChecks("node-redis", version, options, [
  ...checks,
  ["close_connections", async () => Promise.all(openClients.map((client) => client.close().catch(() => null)))],
]);
