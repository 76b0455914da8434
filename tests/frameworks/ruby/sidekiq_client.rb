# The client side of the Sidekiq scenarios: `ruby sidekiq_client.rb STEP`, one JSON line on stdout.
require "json"
require_relative "sidekiq_app"
require "sidekiq/api"

def enqueue
  ids = [AddJob.perform_async(2, 3)]
  ids += Sidekiq::Client.push_bulk("class" => AddJob, "args" => [[10, 1], [20, 2], [30, 3]])
  queue = Sidekiq::Queue.new("default")
  {
    "ids" => ids.map { |id| id.is_a?(String) && id.size == 24 },
    "queues" => Sidekiq::Queue.all.map(&:name),
    "size" => queue.size,
    "classes" => queue.map(&:klass),
    "args" => queue.map(&:args).sort,
    "lengths" => Sidekiq::Stats::Queues.new.lengths,
  }
end

def processes
  set = Sidekiq::ProcessSet.new
  {
    "size" => set.size,
    "processes" => set.map { |p| [p["concurrency"], p["queues"], p["busy"]] },
    "default_size" => Sidekiq::Queue.new("default").size,
  }
end

def schedule
  ids = [AddJob.perform_in(3600, 7, 7), AddJob.perform_in(0.5, 1, 2)]
  scheduled = Sidekiq::ScheduledSet.new
  { "ids" => ids.map { |id| id.size == 24 }, "scheduled" => scheduled.size }
end

def failures
  FlakyJob.perform_async("f1")
  DoomedJob.perform_async("d1")
  RetryLaterJob.perform_async("r1")
  { "enqueued" => Sidekiq::Queue.new.size }
end

def sets
  stats = Sidekiq::Stats.new
  retries = Sidekiq::RetrySet.new
  dead = Sidekiq::DeadSet.new
  {
    "scheduled" => Sidekiq::ScheduledSet.new.map { |job| [job.klass, job.args] },
    "retry" => retries.map { |job| [job.klass, job.args, job["error_class"], job["retry_count"]] },
    "dead" => dead.map { |job| [job.klass, job.args, job["error_class"], job["error_message"]] },
    "stats" => [stats.processed, stats.failed, stats.scheduled_size, stats.retry_size, stats.dead_size,
                stats.enqueued, stats.processes_size],
  }
end

def retry_flaky
  Sidekiq::RetrySet.new.select { |job| job.klass == "FlakyJob" }.each(&:retry)
  { "retry" => Sidekiq::RetrySet.new.map(&:klass) }
end

puts JSON.generate(send(ARGV.fetch(0)))
