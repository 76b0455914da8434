// BullMQ scenarios driven by tests/frameworks/test_bullmq.py: `node bullmq_scenarios.js PORT SCENARIO`.
// Each prints one JSON line of what BullMQ's public API reported; every BullMQ operation is a Lua script on the
// server. A watchdog ends a stuck scenario with a non-zero exit.
"use strict";

const { Queue, Worker, QueueEvents, FlowProducer } = require("bullmq");

const [port, scenario] = [Number(process.argv[2]), process.argv[3]];
const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
const WATCHDOG_MS = 40000;
setTimeout(() => {
  console.error(`scenario ${scenario} did not finish in ${WATCHDOG_MS} ms`);
  process.exit(2);
}, WATCHDOG_MS).unref();

const closing = [];
function track(thing) {
  closing.push(thing);
  return thing;
}

function waitFor(predicate, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = async () => {
      try {
        const value = await predicate();
        if (value) return resolve(value);
        if (Date.now() - started > 30000) return reject(new Error(`${what} not reached`));
        setTimeout(poll, 20);
      } catch (error) {
        reject(error);
      }
    };
    poll();
  });
}

const scenarios = {
  // Queue + Worker, retries with backoff, delayed and prioritized jobs, QueueEvents, counts, clean, obliterate.
  async basics() {
    const queue = track(new Queue("basics", { connection }));
    const events = track(new QueueEvents("basics", { connection }));
    await events.waitUntilReady();
    const completed = [];
    events.on("completed", ({ jobId, returnvalue }) => completed.push([jobId, returnvalue]));
    const order = [];
    const attempts = {};
    await queue.add("add", { a: 1, b: 2 }, { jobId: "sum" });
    await queue.add("flaky", { fails: 2 }, { jobId: "flaky", attempts: 3, backoff: { type: "fixed", delay: 100 } });
    await queue.add("boom", {}, { jobId: "boom", attempts: 2, backoff: { type: "exponential", delay: 50 } });
    const delayedAt = Date.now();
    await queue.add("add", { a: 40, b: 2 }, { jobId: "later", delay: 500 });
    for (const [id, priority] of [["p-low", 10], ["p-high", 1], ["p-mid", 5]]) {
      await queue.add("order", {}, { jobId: id, priority });
    }
    const before = await queue.getJobCounts("waiting", "prioritized", "delayed", "completed", "failed");
    const worker = track(new Worker("basics", async (job) => {
      attempts[job.id] = job.attemptsMade + 1;
      if (job.name === "add") return job.data.a + job.data.b;
      if (job.name === "flaky" && job.attemptsMade < job.data.fails) throw new Error(`flaky ${job.attemptsMade}`);
      if (job.name === "flaky") return "recovered";
      if (job.name === "boom") throw new Error("boom on purpose");
      order.push(job.id);
      return job.id;
    }, { connection, concurrency: 1 }));
    await waitFor(async () => (await queue.getJobCounts("completed")).completed === 6, "six completed jobs");
    await waitFor(async () => (await queue.getJobCounts("failed")).failed === 1, "the failed job");
    const later = await queue.getJob("later");
    const failed = await queue.getJob("boom");
    await waitFor(() => completed.length === 6, "six completed events");
    const after = await queue.getJobCounts("waiting", "prioritized", "delayed", "completed", "failed");
    await worker.close();
    const cleaned = await queue.clean(0, 100, "completed");
    const afterClean = await queue.getJobCounts("completed", "failed");
    await queue.obliterate({ force: true });
    const afterObliterate = await queue.getJobCounts("completed", "failed", "waiting");
    return {
      before, after, order, attempts,
      delayed: [later.returnvalue, later.processedOn - delayedAt >= 500],
      failed: [failed.failedReason, failed.attemptsMade],
      events: completed.map(([id]) => id).sort(),
      cleaned: cleaned.length, afterClean, afterObliterate,
    };
  },

  // FlowProducer: a parent runs after its children and sees their results.
  async flow() {
    const worker = track(new Worker("flow", async (job) => {
      if (job.name === "child") return job.data.n * 10;
      const values = await job.getChildrenValues();
      return Object.values(values).reduce((a, b) => a + b, 0);
    }, { connection }));
    const flows = track(new FlowProducer({ connection }));
    const tree = await flows.add({
      name: "parent", queueName: "flow", data: {},
      children: [1, 2, 3].map((n) => ({ name: "child", queueName: "flow", data: { n } })),
    });
    const parentState = await tree.job.getState();
    const queue = track(new Queue("flow", { connection }));
    await waitFor(async () => (await tree.job.getState()) === "completed", "the parent's completion");
    const parent = await queue.getJob(tree.job.id);
    await worker.close();
    return { parentState, children: tree.children.length, result: parent.returnvalue };
  },

  // A rate-limited worker: 6 jobs at 2 per 400 ms take at least 800 ms.
  async limiter() {
    const queue = track(new Queue("limited", { connection }));
    await queue.addBulk([1, 2, 3, 4, 5, 6].map((n) => ({ name: "n", data: { n } })));
    const started = Date.now();
    const worker = track(new Worker("limited", async (job) => job.data.n, {
      connection, concurrency: 3, limiter: { max: 2, duration: 400 },
    }));
    await waitFor(async () => (await queue.getJobCounts("completed")).completed === 6, "six limited jobs");
    const elapsed = Date.now() - started;
    await worker.close();
    return { completed: 6, atLeast800ms: elapsed >= 800 };
  },

  // A job scheduler repeats its template; removing it stops the repetition.
  async schedulers() {
    const queue = track(new Queue("repeat", { connection }));
    const runs = [];
    const worker = track(new Worker("repeat", async (job) => runs.push(job.data.tick), { connection }));
    await queue.upsertJobScheduler("every-200ms", { every: 200 }, { name: "tick", data: { tick: "t" } });
    const schedulers = (await queue.getJobSchedulers()).map((s) => [s.key, s.every, s.name]);
    await waitFor(() => runs.length >= 3, "three repetitions");
    const removed = await queue.removeJobScheduler("every-200ms");
    const left = await queue.getJobSchedulers();
    await worker.close();
    return { schedulers, repeated: runs.length >= 3, removed, left: left.length };
  },
};

(async () => {
  let result;
  try {
    result = await scenarios[scenario]();
  } finally {
    for (const thing of closing.reverse()) await thing.close();
  }
  console.log(JSON.stringify(result));
  process.exit(0);
})().catch((error) => {
  console.error(error && error.stack ? error.stack : error);
  process.exit(1);
});
