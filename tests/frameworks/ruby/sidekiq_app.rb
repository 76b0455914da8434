# A Sidekiq application as a user writes one (loaded by `sidekiq -r`); jobs report what they did in the list
# "results", which the tests read. REDIS_URL names the server (Sidekiq's own default).
require "sidekiq"

# Check the schedule and retry sets every second, and skip the poller's 10 s start-up wait that an unset interval
# adds: the tests wait for their jobs.
Sidekiq.options[:poll_interval_average] = 1

class AddJob
  include Sidekiq::Worker

  def perform(a, b)
    Sidekiq.redis { |conn| conn.rpush("results", "add:#{a + b}") }
  end
end

# Fails on its first run, then succeeds: the first failure waits in the retry set until the test retries it there
# (Sidekiq adds up to 9 s of jitter to any retry delay, and 15 s to a delay of 0).
class FlakyJob
  include Sidekiq::Worker
  sidekiq_options retry: 2
  sidekiq_retry_in { |_count, _exception| 3600 }

  def perform(name)
    attempt = Sidekiq.redis { |conn| conn.incr("attempts:#{name}") }
    raise ArgumentError, "flaky #{name} failed on attempt #{attempt}" if attempt == 1

    Sidekiq.redis { |conn| conn.rpush("results", "flaky:#{name}:#{attempt}") }
  end
end

# Never succeeds and is not retried: it goes straight to the dead set.
class DoomedJob
  include Sidekiq::Worker
  sidekiq_options retry: 0

  def perform(name)
    raise ArgumentError, "doomed #{name}"
  end
end

# Fails every time and keeps its retries: it waits in the retry set (retried far in the future).
class RetryLaterJob
  include Sidekiq::Worker
  sidekiq_options retry: 5
  sidekiq_retry_in { |_count, _exception| 3600 }

  def perform(name)
    raise ArgumentError, "retry later #{name}"
  end
end
