"use strict";
// Shared by the *_smoke.js scripts: argument parsing, named checks, a JSON summary and a watchdog.
// Usage of every script: node SCRIPT PORT [--resp 2|3] [--lists] [--streams] [--tls DIR]
// --tls DIR: connect over TLS with DIR's ca.crt, client.crt and client.key (the server is "localhost").

const fs = require("node:fs");
const path = require("node:path");

const WATCHDOG_MS = 60_000;
const POLL_TIMEOUT_MS = 10_000;

function parseArgs(argv) {
  const [portText, ...rest] = argv;
  const port = Number(portText);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error("usage: node SCRIPT PORT [--resp 2|3] [--lists] [--streams] [--tls DIR]");
    process.exit(2);
  }
  const options = { port, resp: 2, lists: false, streams: false, tls: null };
  for (let index = 0; index < rest.length; index += 1) {
    const flag = rest[index];
    if (flag === "--lists") options.lists = true;
    else if (flag === "--streams") options.streams = true;
    else if (flag === "--resp") options.resp = Number(rest[++index]);
    else if (flag === "--tls") options.tls = tlsOptions(rest[++index]);
    else {
      console.error(`unknown argument ${flag}`);
      process.exit(2);
    }
  }
  return options;
}

// Node's TLS options for the client certificate and CA written by tests/tls_certs.py into dir.
function tlsOptions(dir) {
  const read = (name) => fs.readFileSync(path.join(dir, name));
  return { ca: read("ca.crt"), cert: read("client.crt"), key: read("client.key"), servername: "localhost" };
}

// The error's message and the line of a smoke script it came from: enough to find the mismatch.
function describe(error) {
  const message = error instanceof Error ? error.message : String(error);
  const frames = (error && error.stack ? error.stack : "").split("\n");
  const ownFrame = frames.find((frame) => frame.includes("_smoke.js:"));
  return ownFrame ? `${message} (${ownFrame.trim()})` : message;
}

// Runs the checks in order; a failing check is recorded and the rest still run, so one summary shows every mismatch.
async function runChecks(clientName, clientVersion, options, checks) {
  const summary = { client: clientName, version: clientVersion, port: options.port, resp: options.resp, checks: {} };
  const watchdog = setTimeout(() => {
    summary.ok = false;
    summary.error = `watchdog: not finished after ${WATCHDOG_MS} ms`;
    console.log(JSON.stringify(summary));
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();
  for (const [name, check] of checks) {
    try {
      await check();
      summary.checks[name] = "ok";
    } catch (error) {
      summary.checks[name] = `failed: ${describe(error)}`;
    }
  }
  summary.ok = Object.values(summary.checks).every((result) => result === "ok");
  console.log(JSON.stringify(summary));
  process.exit(summary.ok ? 0 : 1);
}

// Polls observable server state (e.g. PUBSUB NUMSUB) instead of sleeping for an ordering.
async function waitFor(description, predicate) {
  const deadline = Date.now() + POLL_TIMEOUT_MS;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function withTimeout(promise, description, milliseconds = POLL_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${description}`)), milliseconds);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

module.exports = { parseArgs, runChecks, waitFor, withTimeout };
